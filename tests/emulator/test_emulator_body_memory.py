"""What reading a request body costs the emulator in memory, measured with tracemalloc around
its body reader while a client sends over a real socket: about the body's size within
``max_body_bytes``, and about nothing past it, however the body is chunked."""

from __future__ import annotations

import socket
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from mixpanel_core.emulator import Emulator, server

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
LIMIT = 64 * 1024


@pytest.fixture
def body_read_peaks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The most memory allocated at once (above what was allocated before) while the
    emulator read each request body, in bytes."""
    peaks: list[int] = []
    read_body = server.read_body

    def measured(*args: Any) -> bytes:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        try:
            return read_body(*args)
        finally:
            peaks.append(tracemalloc.get_traced_memory()[1] - before)

    monkeypatch.setattr(server, "read_body", measured)
    tracemalloc.start()
    try:
        yield peaks
    finally:
        tracemalloc.stop()


def _post_chunked(emulator: Emulator, chunks: bytes) -> bytes:
    """POST the already-framed ``chunks`` to /track and return the answer's status line."""
    head = (
        b"POST /track HTTP/1.1\r\nHost: emulator\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=10) as raw:
        raw.sendall(head + chunks + b"0\r\n\r\n")
        return raw.makefile("rb").readline()


def test_a_chunk_past_max_body_bytes_is_dropped_a_piece_at_a_time(
    body_read_peaks: list[int],
) -> None:
    """A 16 MiB chunk of a body refused with 413 is not held whole."""
    size = 16 * 1024 * 1024
    chunk = b"%x\r\n" % size + b"x" * size + b"\r\n"
    with Emulator(max_body_bytes=LIMIT) as emulator:
        assert _post_chunked(emulator, chunk).startswith(b"HTTP/1.1 413 ")
    assert len(body_read_peaks) == 1  # the one request
    assert body_read_peaks[0] < 1024 * 1024


def test_a_body_of_one_byte_chunks_costs_about_its_size(
    body_read_peaks: list[int], make_event: MakeEvent
) -> None:
    """Kept as one buffer, not an object per chunk (about 40 bytes each for a byte of data)."""
    events = [make_event(pad="p" * 200)]
    while len(orjson.dumps(events)) < LIMIT - 1024:
        events.append(make_event(pad="p" * 200))
    body = orjson.dumps(events)
    chunks = b"".join(b"1\r\n%c\r\n" % byte for byte in body)
    with Emulator(max_body_bytes=LIMIT) as emulator:
        assert _post_chunked(emulator, chunks).startswith(b"HTTP/1.1 200 ")
        assert len(emulator.records("track")) == len(events)
    assert len(body_read_peaks) == 1  # the one request
    assert body_read_peaks[0] < 4 * len(body)
