"""The documented SIC -> sector table."""

from __future__ import annotations

import logging

import pytest

from polygon.sectors import SECTORS, SIC_SECTOR_RANGES, sector_for_sic


@pytest.mark.parametrize(
    ("sic", "sector"),
    [
        ("3571", "Information Technology"),  # Apple: electronic computers
        ("3674", "Information Technology"),  # semiconductors
        ("7372", "Information Technology"),  # prepackaged software
        ("2834", "Health Care"),  # pharmaceutical preparations
        ("3841", "Health Care"),  # surgical instruments
        ("6022", "Financials"),  # state commercial banks
        ("6798", "Real Estate"),  # REITs
        ("1311", "Energy"),  # crude petroleum and natural gas
        ("4911", "Utilities"),  # electric services
        ("4953", "Industrials"),  # refuse systems
        ("4813", "Communication Services"),  # telephone communications
        ("5331", "Consumer Discretionary"),  # variety stores
        ("5411", "Consumer Staples"),  # grocery stores
        ("3711", "Consumer Discretionary"),  # motor vehicles
        ("3721", "Industrials"),  # aircraft
        ("2086", "Consumer Staples"),  # soft drinks
        (1000, "Materials"),
    ],
)
def test_known_sic_codes_map_to_their_sector(sic: str, sector: str) -> None:
    assert sector_for_sic(sic) == sector


def test_unmapped_or_missing_codes_give_none(caplog: pytest.LogCaptureFixture) -> None:
    assert sector_for_sic(None) is None
    assert sector_for_sic("") is None
    assert sector_for_sic("9711") is None  # national security: no listed-equity sector
    with caplog.at_level(logging.WARNING, logger="polygon.sectors"):
        assert sector_for_sic("ABC") is None
    assert "ABC" in caplog.text


def test_table_uses_only_gics_sector_names_and_valid_ranges() -> None:
    for low, high, sector in SIC_SECTOR_RANGES:
        assert sector in SECTORS
        assert 0 < low <= high <= 9999


def test_every_carve_out_comes_before_the_broad_range_containing_it() -> None:
    # first match wins, so a narrower range listed after a wider overlapping one is dead
    for i, (low, high, _) in enumerate(SIC_SECTOR_RANGES):
        for low2, high2, _ in SIC_SECTOR_RANGES[:i]:
            assert not (low2 <= low and high <= high2), (low, high, "shadowed by", low2, high2)
