"""SIC code -> sector, so sector constraints and neutralisation use real data.

Polygon's ticker details carry the SEC's 4-digit SIC code (``sic_code``), not a
GICS sector. This module maps SIC codes to the 11 GICS sector *names* with a
documented, hand-checkable range table.

Why a range table and not a licensed GICS feed: SIC is what the data vendor
actually provides for every listed company, it is public, and the mapping is
reviewable in one screen. It is an approximation: SIC describes a company's
primary *industry* by the 1987 classification, so e.g. internet retailers
(5961) land in Consumer Discretionary and most internet platforms (7370-7374)
in Information Technology, where GICS puts some of them in Communication
Services. Rules are checked in order and the first range containing the code
wins, so the specific carve-outs come before the broad divisions.

=========  =========  ========================  ==========================================
from       to         sector                    SIC meaning
=========  =========  ========================  ==========================================
2830       2836       Health Care               drugs, pharmaceuticals, biologicals
2840       2844       Consumer Staples          soap, detergents, cosmetics
3570       3579       Information Technology    computers and office equipment
3630       3639       Consumer Discretionary    household appliances
3651       3652       Consumer Discretionary    household audio/video, records
3710       3716       Consumer Discretionary    motor vehicles and car bodies
3840       3851       Health Care               medical instruments and supplies
5120       5122       Health Care               drug wholesale
5140       5149       Consumer Staples          grocery wholesale
5400       5499       Consumer Staples          food stores
5912       5912       Consumer Staples          drug stores
6500       6553       Real Estate               real estate operators and developers
6798       6798       Real Estate               real estate investment trusts
7310       7319       Communication Services    advertising
7370       7379       Information Technology    computer programming, software, services
7800       7899       Communication Services    motion pictures, video
8000       8099       Health Care               health services
8731       8731       Health Care               commercial biological research
100        999        Consumer Staples          agriculture, forestry, fishing
1000       1099       Materials                 metal mining
1200       1399       Energy                    coal, oil and gas extraction
1400       1499       Materials                 non-metallic minerals
1500       1799       Industrials               construction
2000       2199       Consumer Staples          food and tobacco
2200       2399       Consumer Discretionary    textiles and apparel
2400       2499       Materials                 lumber and wood
2500       2599       Consumer Discretionary    furniture
2600       2699       Materials                 paper
2700       2799       Communication Services    printing and publishing
2800       2899       Materials                 chemicals
2900       2999       Energy                    petroleum refining
3000       3099       Materials                 rubber and plastics
3100       3199       Consumer Discretionary    leather goods
3200       3399       Materials                 stone, glass, primary metals
3400       3569       Industrials               fabricated metal, industrial machinery
3580       3599       Industrials               refrigeration, service machinery
3600       3699       Information Technology    electronic equipment, semiconductors
3700       3799       Industrials               aircraft, ships, rail equipment
3800       3899       Information Technology    measuring and optical instruments
3900       3999       Consumer Discretionary    miscellaneous manufacturing
4000       4799       Industrials               transportation
4800       4899       Communication Services    telecommunications, broadcasting
4950       4959       Industrials               sanitary and waste services
4900       4999       Utilities                 electric, gas, water
5000       5199       Industrials               wholesale trade
5200       5999       Consumer Discretionary    retail trade
6000       6799       Financials                banks, insurance, brokers, blank checks
7000       7299       Consumer Discretionary    hotels, personal services
7300       7399       Industrials               business services
7500       7999       Consumer Discretionary    auto repair, amusement, recreation
8200       8299       Consumer Discretionary    education
8100       8999       Industrials               legal, engineering, management services
9995       9995       Financials                non-operating establishments (SPACs)
=========  =========  ========================  ==========================================

Codes outside every range (public administration 91xx-97xx, unknown) map to None.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

SECTORS: tuple[str, ...] = (
    "Communication Services", "Consumer Discretionary", "Consumer Staples", "Energy",
    "Financials", "Health Care", "Industrials", "Information Technology", "Materials",
    "Real Estate", "Utilities",
)

SIC_SECTOR_RANGES: tuple[tuple[int, int, str], ...] = (
    (2830, 2836, "Health Care"),
    (2840, 2844, "Consumer Staples"),
    (3570, 3579, "Information Technology"),
    (3630, 3639, "Consumer Discretionary"),
    (3651, 3652, "Consumer Discretionary"),
    (3710, 3716, "Consumer Discretionary"),
    (3840, 3851, "Health Care"),
    (5120, 5122, "Health Care"),
    (5140, 5149, "Consumer Staples"),
    (5400, 5499, "Consumer Staples"),
    (5912, 5912, "Consumer Staples"),
    (6500, 6553, "Real Estate"),
    (6798, 6798, "Real Estate"),
    (7310, 7319, "Communication Services"),
    (7370, 7379, "Information Technology"),
    (7800, 7899, "Communication Services"),
    (8000, 8099, "Health Care"),
    (8731, 8731, "Health Care"),
    (100, 999, "Consumer Staples"),
    (1000, 1099, "Materials"),
    (1200, 1399, "Energy"),
    (1400, 1499, "Materials"),
    (1500, 1799, "Industrials"),
    (2000, 2199, "Consumer Staples"),
    (2200, 2399, "Consumer Discretionary"),
    (2400, 2499, "Materials"),
    (2500, 2599, "Consumer Discretionary"),
    (2600, 2699, "Materials"),
    (2700, 2799, "Communication Services"),
    (2800, 2899, "Materials"),
    (2900, 2999, "Energy"),
    (3000, 3099, "Materials"),
    (3100, 3199, "Consumer Discretionary"),
    (3200, 3399, "Materials"),
    (3400, 3569, "Industrials"),
    (3580, 3599, "Industrials"),
    (3600, 3699, "Information Technology"),
    (3700, 3799, "Industrials"),
    (3800, 3899, "Information Technology"),
    (3900, 3999, "Consumer Discretionary"),
    (4000, 4799, "Industrials"),
    (4800, 4899, "Communication Services"),
    (4950, 4959, "Industrials"),
    (4900, 4999, "Utilities"),
    (5000, 5199, "Industrials"),
    (5200, 5999, "Consumer Discretionary"),
    (6000, 6799, "Financials"),
    (7000, 7299, "Consumer Discretionary"),
    (7300, 7399, "Industrials"),
    (7500, 7999, "Consumer Discretionary"),
    (8200, 8299, "Consumer Discretionary"),
    (8100, 8999, "Industrials"),
    (9995, 9995, "Financials"),
)


def sector_for_sic(sic_code: str | int | None) -> str | None:
    """Map a SIC code to its sector by the table in the module docstring (None if unmapped).

    Parameters
    ----------
    sic_code : str, int or None
        Polygon's ``sic_code`` (a string such as ``"3571"``).

    Examples
    --------
    >>> sector_for_sic("3571")
    'Information Technology'
    >>> sector_for_sic("2834")
    'Health Care'
    >>> sector_for_sic(None) is None
    True
    """
    if sic_code is None or str(sic_code).strip() == "":
        return None
    try:
        code = int(str(sic_code).strip())
    except ValueError:
        logger.warning("SIC code %r is not a number; sector left unknown", sic_code)
        return None
    for low, high, sector in SIC_SECTOR_RANGES:
        if low <= code <= high:
            return sector
    return None
