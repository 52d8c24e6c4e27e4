"""Encoder and decoder of TWS messages at server version 176 (both directions).

The layouts live in :mod:`._layouts`; this module turns named values into field lists
(and back). Encoding is *strict*: an unknown name raises, and every message comes out
with exactly the field count of its layout, because the client libraries silently drop
messages with one field too many or too few (``ib-protocol.md`` section 2.4).
"""

from __future__ import annotations

from typing import NamedTuple

from ._layouts import (
    CLIENT,
    CLIENT_BY_ID,
    CONTRACT_DETAILS_SECID_AT,
    DELTA_NEUTRAL_BLOCK,
    OPEN_ORDER_HEAD,
    OPEN_ORDER_TAIL,
    PLACE_ORDER,
    SERVER,
    SERVER_BY_ID,
    Layout,
)
from ._wire import UNSET_DOUBLE_TEXT, format_value, parse_float
from .errors import ProtocolError

SERVER_VERSION = 176


class Message(NamedTuple):
    """One decoded message: its name, numeric id and field values by name (as text)."""

    name: str
    msg_id: int
    values: dict[str, str]


class UnsupportedOrder(ProtocolError):
    """A placeOrder uses an optional block the fake does not emulate (algo, BAG, ...)."""


def encode_server(name: str, **values: object) -> list[str]:
    """Build the text fields of server message ``name``; missing values are sent empty.

    Raises
    ------
    ProtocolError
        If ``name`` is unknown or a value name is not part of the layout.

    Examples
    --------
    >>> encode_server("nextValidId", orderId=7)
    ['9', '1', '7']
    >>> encode_server("tickPrice", reqId=3, tickType=4, price=101.5, size=100, attrMask=0)
    ['1', '6', '3', '4', '101.5', '100', '0']
    """
    layout = _server_layout(name)
    unknown = set(values) - set(layout.names)
    if unknown:
        raise ProtocolError(f"{name}: unknown fields {sorted(unknown)}")
    return _prefix(layout) + [format_value(values.get(field)) for field in layout.names]


def handshake_reply(version: int, connection_time: str) -> list[str]:
    """The server's answer to the ``API`` handshake: exactly two fields."""
    return [str(version), connection_time]


def decode_server(fields: list[str]) -> Message:
    """Decode one server -> client frame (as received by a client library).

    Why: the tests decode every frame of the recorded real TWS sessions with this, so
    the layouts the encoder uses are checked against what real TWS sent.

    Raises
    ------
    ProtocolError
        Unknown message id, wrong field count, or an optional block the fake does not model.
    """
    msg_id = _msg_id(fields)
    name = SERVER_BY_ID.get(msg_id)
    if name is None:
        raise ProtocolError(f"unknown server message id {msg_id}")
    if name == "openOrder":
        return Message(name, msg_id, _decode_open_order(fields))
    if name == "contractDetails":
        return Message(name, msg_id, _decode_contract_details(fields))
    return Message(name, msg_id, _zip_exact(name, SERVER[name], fields))


def decode_client(fields: list[str]) -> Message:
    """Decode one client -> server frame; unknown ids decode as ``"unknown"`` (not an error).

    Raises
    ------
    ProtocolError
        A known message with the wrong field count.
    UnsupportedOrder
        A placeOrder with a block the fake does not emulate.
    """
    msg_id = _msg_id(fields)
    name = CLIENT_BY_ID.get(msg_id)
    if name is None:
        return Message("unknown", msg_id, {f"field{i}": v for i, v in enumerate(fields[1:], 1)})
    if name == "placeOrder":
        return Message(name, msg_id, _decode_place_order(fields))
    if name == "reqMktData" and len(fields) > 5 and fields[5] == "BAG":
        raise UnsupportedOrder("reqMktData for BAG contracts is not supported by the fake")
    return Message(name, msg_id, _zip_exact(name, CLIENT[name], fields))


def _server_layout(name: str) -> Layout:
    try:
        return SERVER[name]
    except KeyError as e:
        raise ProtocolError(f"unknown server message {name!r}") from e


def _prefix(layout: Layout) -> list[str]:
    head = [str(layout.msg_id)]
    return head + ([str(layout.version)] if layout.version is not None else [])


def _msg_id(fields: list[str]) -> int:
    if not fields:
        raise ProtocolError("empty message")
    try:
        return int(fields[0])
    except ValueError as e:
        raise ProtocolError(f"message id is not an integer: {fields[0]!r}") from e


def _zip_exact(name: str, layout: Layout, fields: list[str]) -> dict[str, str]:
    body = fields[len(_prefix(layout)) :]
    if len(fields) != len(_prefix(layout)) + len(layout.names):
        raise ProtocolError(
            f"{name}: expected {len(layout.names) + len(_prefix(layout))} fields, "
            f"got {len(fields)}"
        )
    return dict(zip(layout.names, body))


def _decode_contract_details(fields: list[str]) -> dict[str, str]:
    body = fields[1:]
    head = body[: CONTRACT_DETAILS_SECID_AT + 1]
    count = int(head[-1] or 0) if len(head) == CONTRACT_DETAILS_SECID_AT + 1 else 0
    pairs = body[CONTRACT_DETAILS_SECID_AT + 1 : CONTRACT_DETAILS_SECID_AT + 1 + 2 * count]
    rest = body[:CONTRACT_DETAILS_SECID_AT + 1] + body[CONTRACT_DETAILS_SECID_AT + 1 + 2 * count :]
    values = _zip_exact("contractDetails", SERVER["contractDetails"], [fields[0], *rest])
    values["secIdList"] = ";".join(f"{t}={v}" for t, v in zip(pairs[::2], pairs[1::2]))
    return values


def _decode_open_order(fields: list[str]) -> dict[str, str]:
    body = fields[1:]
    values = dict(zip(OPEN_ORDER_HEAD, body))
    cursor = len(OPEN_ORDER_HEAD)
    if values.get("deltaNeutralOrderType"):
        values.update(zip(DELTA_NEUTRAL_BLOCK, body[cursor : cursor + len(DELTA_NEUTRAL_BLOCK)]))
        cursor += len(DELTA_NEUTRAL_BLOCK)
    tail = body[cursor:]
    if len(tail) != len(OPEN_ORDER_TAIL) or len(values) < len(OPEN_ORDER_HEAD):
        raise ProtocolError(f"openOrder: unexpected field count {len(fields)}")
    values.update(zip(OPEN_ORDER_TAIL, tail))
    _require_plain_open_order(values)
    return values


def _require_plain_open_order(values: dict[str, str]) -> None:
    counts = ("comboLegsCount", "orderComboLegsCount", "smartComboRoutingParamsCount")
    if any(values[name] not in ("", "0") for name in counts):
        raise ProtocolError("openOrder with combo legs is not supported")
    increment = parse_float(values["scalePriceIncrement"], 0.0) or 0.0
    if increment > 0 or values["hedgeType"] or values["algoStrategy"]:
        raise ProtocolError("openOrder with scale/hedge/algo blocks is not supported")
    if values["deltaNeutralContractPresent"] not in ("", "0"):
        raise ProtocolError("openOrder with a delta-neutral contract is not supported")
    if values["conditionsCount"] not in ("", "0") or "PEG" in values["orderType"]:
        raise ProtocolError("openOrder with conditions or PEG orders is not supported")


def _decode_place_order(fields: list[str]) -> dict[str, str]:
    values = dict(zip(PLACE_ORDER, fields[1:]))
    problems = []
    if values.get("secType") == "BAG":
        problems.append("BAG (combo) orders")
    if values.get("deltaNeutralOrderType"):
        problems.append("delta-neutral orders")
    increment = parse_float(values.get("scalePriceIncrement", ""), 0.0) or 0.0
    if 0 < increment and values.get("scalePriceIncrement") != UNSET_DOUBLE_TEXT:
        problems.append("scale orders")
    if values.get("hedgeType"):
        problems.append("hedge orders")
    if values.get("deltaNeutralContractPresent") not in (None, "", "0"):
        problems.append("delta-neutral contracts")
    if values.get("algoStrategy"):
        problems.append("algo orders")
    if values.get("conditionsCount") not in (None, "", "0"):
        problems.append("order conditions")
    if "PEG" in values.get("orderType", "") or values.get("exchange") == "IBKRATS":
        problems.append("PEG / IBKRATS orders")
    if problems:
        raise UnsupportedOrder("not supported by the fake: " + ", ".join(problems))
    if len(fields) != len(PLACE_ORDER) + 1:
        expected = len(PLACE_ORDER) + 1
        raise ProtocolError(f"placeOrder: expected {expected} fields, got {len(fields)}")
    return values
