"""A fake TWS / IB Gateway speaking the real TWS socket protocol (server version 176).

Real ``ib_async`` / ``ib_insync`` clients connect to :class:`FakeGateway` unmodified over
127.0.0.1; tests script fills, rejects, ticks, notices and disconnects through it.
"""

from .book import OrderBook
from .codec import SERVER_VERSION, Message, decode_client, decode_server, encode_server
from .errors import FakeTwsError, ProtocolError, ScriptError
from .gateway import ClientRequest, FakeGateway
from .model import (
    DEFAULT_PRICES,
    ContractSpec,
    Execution,
    FillPolicy,
    OrderRecord,
    OrderStatus,
    Quote,
    default_contracts,
)

__all__ = [
    "DEFAULT_PRICES",
    "SERVER_VERSION",
    "ClientRequest",
    "ContractSpec",
    "Execution",
    "FakeGateway",
    "FakeTwsError",
    "FillPolicy",
    "Message",
    "OrderBook",
    "OrderRecord",
    "OrderStatus",
    "ProtocolError",
    "Quote",
    "ScriptError",
    "decode_client",
    "decode_server",
    "default_contracts",
    "encode_server",
]
