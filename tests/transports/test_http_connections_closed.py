"""``close()`` closes every connection of the HTTP transports at once, not when the garbage
collector happens to free what held them (real sockets, the emulator)."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import HttpOptions
from mixpanel_core.messages import Message
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport
from transports.http import HttpTransport

from .test_buffered_http import make_event

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not Path("/proc/self/net/tcp").exists(), reason="counts sockets through /proc (Linux)"
    ),
]

_FAST = {"backoff_base": 0.001, "backoff_cap": 0.002}
_THREADS = 8
_DROPPED = 3
"""Connections the emulator closes without an answer: each request it fails raises inside
urllib3, whose frames then hold the request's pool in a reference cycle until a collection."""


def _open_connections_to(port: int) -> int:
    """This process's ESTABLISHED TCP connections whose remote end is ``port``."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since it was listed
            continue
        if target.startswith("socket:["):
            ours.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            established = fields[3] == "01"
            if established and remote_port == port and fields[9] in ours:
                count += 1
    return count


@pytest.fixture
def no_collection() -> Iterator[None]:
    """No garbage collection during the test: what it measures must not depend on when one runs."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _send_from_threads(emulator: Emulator, send: Callable[[Message], None]) -> None:
    """Eight threads send at once; the emulator drops a few of their connections meanwhile."""
    started = threading.Barrier(_THREADS)

    def sender(first: int) -> None:
        started.wait()
        for n in range(first, first + 20):
            send(make_event("closed", n))

    threads = [threading.Thread(target=sender, args=(i * 100,)) for i in range(_THREADS)]
    emulator.client.drop_next(_DROPPED)
    emulator.client.close()  # its own connection to the same port must not be counted
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.usefixtures("no_collection")
def test_http_close_closes_every_connection_at_once(mixpanel_emulator: Emulator) -> None:
    port = urlsplit(mixpanel_emulator.base_url).port
    assert port is not None
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url)
    transport = HttpTransport(settings, HttpOptions(**_FAST))
    _send_from_threads(mixpanel_emulator, transport.send)
    assert mixpanel_emulator.client.stats()["accepted"]["track"] == _THREADS * 20
    mixpanel_emulator.client.close()
    assert _open_connections_to(port) >= 1  # what close() has to close
    transport.close()
    assert _open_connections_to(port) == 0


@pytest.mark.usefixtures("no_collection")
def test_buffered_http_close_closes_every_connection_at_once(
    mixpanel_emulator: Emulator,
) -> None:
    port = urlsplit(mixpanel_emulator.base_url).port
    assert port is not None
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url)
    # One record per request, so that the dropped connections hit requests of this test.
    options = BufferedHttpOptions(max_batch_records=1, **_FAST)
    transport = BufferedHttpTransport(settings, options)
    _send_from_threads(mixpanel_emulator, transport.send)
    assert list(transport.flush(30)) == []
    assert mixpanel_emulator.client.stats()["accepted"]["track"] == _THREADS * 20
    mixpanel_emulator.client.close()
    assert _open_connections_to(port) >= 1
    assert list(transport.close(10)) == []
    assert _open_connections_to(port) == 0
