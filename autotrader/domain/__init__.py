"""Pure trading domain: records, the order state machine and the domain exceptions."""

from autotrader.domain.errors import (
    BrokerError,
    InvalidTransition,
    JournalError,
    OverfillError,
    RecommendationsError,
    TraderError,
)
from autotrader.domain.orders import (
    BROKER_STATUS_EVENTS,
    TRANSITIONS,
    Order,
    OrderEvent,
    OrderStatus,
    next_status,
)
from autotrader.domain.records import (
    Account,
    Fill,
    OrderIntent,
    OrderRequest,
    OrderStatusEvent,
    OrderType,
    Position,
    Quote,
    Side,
)

__all__ = [
    "BROKER_STATUS_EVENTS",
    "TRANSITIONS",
    "Account",
    "BrokerError",
    "Fill",
    "InvalidTransition",
    "JournalError",
    "Order",
    "OrderEvent",
    "OrderIntent",
    "OrderRequest",
    "OrderStatus",
    "OrderStatusEvent",
    "OrderType",
    "OverfillError",
    "Position",
    "Quote",
    "RecommendationsError",
    "Side",
    "TraderError",
    "next_status",
]
