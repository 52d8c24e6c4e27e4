"""Framing and value encoding of the TWS socket protocol (both directions).

Every message is ``uint32_be(len(payload)) + payload`` where the payload is a list of
NUL-terminated ASCII fields. The only exception is the client's opening handshake,
``b"API\\0" + uint32_be(len(S)) + S`` with ``S = "v157..176"``.
"""

from __future__ import annotations

import math
import struct

from .errors import ProtocolError

HANDSHAKE_PREFIX = b"API\0"
UNSET_INTEGER = 2**31 - 1
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"
_LENGTH = struct.Struct(">I")
MAX_FRAME_BYTES = 16 * 1024 * 1024


def encode_frame(fields: list[str]) -> bytes:
    """Encode already-formatted text fields as one length-prefixed frame.

    Examples
    --------
    >>> encode_frame(["9", "1", "7"])
    b'\\x00\\x00\\x00\\x069\\x001\\x007\\x00'
    """
    payload = b"".join(field.encode("ascii", "backslashreplace") + b"\0" for field in fields)
    return _LENGTH.pack(len(payload)) + payload


def split_payload(payload: bytes) -> list[str]:
    """Split one frame payload into text fields (every field is NUL-terminated).

    Examples
    --------
    >>> split_payload(b"62\\x001\\x00")
    ['62', '1']
    """
    if payload and not payload.endswith(b"\0"):
        raise ProtocolError(f"payload does not end with NUL: {payload[-20:]!r}")
    return payload.decode("utf-8", "backslashreplace").split("\0")[:-1]


def decode_frame(frame: bytes) -> list[str]:
    """Decode one complete frame *including* its 4-byte length prefix."""
    if len(frame) < 4:
        raise ProtocolError(f"frame shorter than its length prefix: {frame!r}")
    (length,) = _LENGTH.unpack_from(frame)
    if length != len(frame) - 4:
        raise ProtocolError(f"length prefix says {length} bytes, frame has {len(frame) - 4}")
    return split_payload(frame[4:])


def build_handshake(min_version: int = 157, max_version: int = 176, options: str = "") -> bytes:
    """Build the bytes a client sends first (used by tests and the recordings check)."""
    text = f"v{min_version}..{max_version}" + (f" {options}" if options else "")
    raw = text.encode("ascii")
    return HANDSHAKE_PREFIX + _LENGTH.pack(len(raw)) + raw


def parse_version_range(text: str) -> tuple[int, int]:
    """Parse ``"v157..176 +PACEAPI"`` into ``(157, 176)``; connect options are ignored.

    Examples
    --------
    >>> parse_version_range("v157..178 +PACEAPI")
    (157, 178)
    >>> parse_version_range("v100")
    (100, 100)
    """
    spec = text.split(" ", 1)[0]
    if not spec.startswith("v"):
        raise ProtocolError(f"bad version range {text!r}")
    low, _, high = spec[1:].partition("..")
    try:
        return int(low), int(high or low)
    except ValueError as e:
        raise ProtocolError(f"bad version range {text!r}") from e


def format_value(value: object) -> str:
    """Format one Python value the way TWS writes it on the wire.

    Why: the client parsers do ``int(field or 0)`` on id fields, so ints must never be
    written as ``"7.0"``; integral floats are written without the ``.0`` (TWS writes
    quantities as ``"100"``), and ``None`` means unset (an empty field).

    Examples
    --------
    >>> [format_value(v) for v in (None, True, 7, 100.0, 101.25, "x")]
    ['', '1', '7', '100', '101.25', 'x']
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    return str(value)


def _format_float(value: float) -> str:
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "Infinite" if value > 0 else "-Infinite"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(round(value, 10))


def parse_float(text: str, default: float | None = None) -> float | None:
    """Parse a client float field: ``""`` (unset) gives ``default``."""
    if text == "" or text == UNSET_DOUBLE_TEXT:
        return default
    try:
        value = float(text)
    except ValueError as e:
        raise ProtocolError(f"not a number: {text!r}") from e
    return default if value >= 1.7e308 else value


def parse_int(text: str, default: int = 0) -> int:
    """Parse a client int field: ``""`` or the unset sentinel gives ``default``."""
    if text == "":
        return default
    try:
        value = int(float(text)) if "." in text else int(text)
    except ValueError as e:
        raise ProtocolError(f"not an integer: {text!r}") from e
    return default if value == UNSET_INTEGER else value


def parse_bool(text: str) -> bool:
    """Parse ``"1"``/``"0"``/``""`` (also ``"True"``/``"False"``) into a bool."""
    return text not in ("", "0", "False", "false")


class FrameBuffer:
    """Reassemble frames from an arbitrary chunking of the byte stream.

    Why: TCP gives no message boundaries; one ``recv`` may hold half a frame or several
    frames, so both the handshake and the frames are cut out of one growing buffer.

    Examples
    --------
    >>> buf = FrameBuffer()
    >>> data = encode_frame(["49", "1"]) + encode_frame(["61", "1"])
    >>> buf.feed(data[:5]), buf.feed(data[5:])
    ([], [['49', '1'], ['61', '1']])
    """

    def __init__(self) -> None:
        self._data = bytearray()

    def append(self, chunk: bytes) -> None:
        """Add bytes without cutting frames (used before the handshake is complete)."""
        self._data.extend(chunk)

    def feed(self, chunk: bytes) -> list[list[str]]:
        """Add bytes; return every frame completed by them (possibly none)."""
        self._data.extend(chunk)
        frames = []
        while len(self._data) >= 4:
            (length,) = _LENGTH.unpack_from(self._data)
            if length > MAX_FRAME_BYTES:
                raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
            if len(self._data) < 4 + length:
                break
            payload = bytes(self._data[4 : 4 + length])
            del self._data[: 4 + length]
            frames.append(split_payload(payload))
        return frames

    def take_handshake(self) -> str | None:
        """Cut the ``API\\0`` handshake out of the buffer; None until it is complete."""
        if len(self._data) < 8:
            return None
        if bytes(self._data[:4]) != HANDSHAKE_PREFIX:
            raise ProtocolError(f"expected API handshake, got {bytes(self._data[:8])!r}")
        (length,) = _LENGTH.unpack_from(self._data, 4)
        if len(self._data) < 8 + length:
            return None
        text = bytes(self._data[8 : 8 + length]).decode("ascii", "backslashreplace")
        del self._data[: 8 + length]
        return text
