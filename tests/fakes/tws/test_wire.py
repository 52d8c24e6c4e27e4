"""Framing, handshake and raw-socket behaviour of the fake (no client library)."""

from __future__ import annotations

import socket

import pytest

from tests.fakes.tws import ProtocolError
from tests.fakes.tws._wire import (
    FrameBuffer,
    build_handshake,
    encode_frame,
    format_value,
    parse_version_range,
)


def test_frame_buffer_handles_any_chunking():
    data = build_handshake() + encode_frame(["71", "2", "1", ""]) + encode_frame(["61", "1"])
    for size in (1, 3, 7, len(data)):
        buf = FrameBuffer()
        handshake, frames = None, []
        for start in range(0, len(data), size):
            buf.append(data[start : start + size])
            if handshake is None:
                handshake = buf.take_handshake()
            if handshake is not None:
                frames += buf.feed(b"")
        assert handshake == "v157..176"
        assert frames == [["71", "2", "1", ""], ["61", "1"]]


def test_bad_handshake_and_version_ranges_raise():
    buf = FrameBuffer()
    buf.append(b"GET / HTTP/1.1\r\n")
    with pytest.raises(ProtocolError):
        buf.take_handshake()
    with pytest.raises(ProtocolError):
        parse_version_range("157..176")
    assert parse_version_range("v157..176 +PACEAPI") == (157, 176)


def test_format_value_never_writes_integral_floats_with_a_fraction():
    assert [format_value(v) for v in (7, 7.0, 0.5, None, False, float("inf"))] == [
        "7", "7", "0.5", "", "0", "Infinite"]  # fmt: skip


def _read_frames(sock: socket.socket, count: int) -> list[list[str]]:
    buf, frames = FrameBuffer(), []
    while len(frames) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        frames += buf.feed(chunk)
    return frames


def test_raw_handshake_split_across_writes(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=2) as sock:
        data = build_handshake() + encode_frame(["71", "2", "8", ""])
        for byte in (data[:2], data[2:9], data[9:]):
            sock.sendall(byte)
        frames = _read_frames(sock, 6)
    assert frames[0][0] == "176" and len(frames[0]) == 2
    assert frames[1] == ["15", "1", "DU1234567"]
    assert frames[2] == ["9", "1", "1"]
    assert [f[3] for f in frames[3:6]] == ["2104", "2106", "2158"]


def test_client_range_without_176_is_closed(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=2) as sock:
        sock.sendall(build_handshake(177, 178))
        assert sock.recv(1024) == b""


def test_malformed_request_gets_321_and_connection_survives(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=2) as sock:
        sock.sendall(build_handshake() + encode_frame(["71", "2", "8", ""]))
        _read_frames(sock, 6)
        sock.sendall(encode_frame(["9", "8", "77", "short"]) + encode_frame(["49", "1"]))
        error, current_time = _read_frames(sock, 2)
    assert error[:4] == ["4", "2", "77", "321"]
    assert current_time[:2] == ["49", "1"] and current_time[2].isdigit()
    assert [r.name for r in gateway.requests()][-1] == "reqCurrentTime"


def test_pacing_violations_get_100_then_the_socket_closes():
    from tests.fakes.tws import FakeGateway

    with FakeGateway(max_messages_per_second=5, pacing_violations_before_close=2) as gw:
        with socket.create_connection(("127.0.0.1", gw.port), timeout=2) as sock:
            sock.sendall(build_handshake() + encode_frame(["71", "2", "8", ""]))
            _read_frames(sock, 6)
            sock.sendall(b"".join(encode_frame(["49", "1"]) for _ in range(10)))
            frames = _read_frames(sock, 100)  # reads until the server closes
    # startApi counted as 1 message: 4 currentTime answers, then two 100 errors, then close.
    assert [f[0] for f in frames] == ["49"] * 4 + ["4", "4"]
    assert all(f[3] == "100" for f in frames[4:])
