"""A proxy that cannot be reached keeps its password out of every error, log and report.

The 407 answer is covered by test_proxy_auth.py; here the proxy never answers at all: nothing
listens on its port, or it closes each connection at once. urllib3's errors for these quote
the proxy they tried, so the ``user:password@`` of ``HTTPS_PROXY`` must be gone from the
``DeliveryError`` the http transport raises (its whole chain and traceback), from the log at
DEBUG and from the reports ``close()`` returns, as written and in the Basic header it becomes.
"""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import DeliveryError

pytestmark = pytest.mark.integration

PASSWORD = "S3CR3T-canary-proxy"
SPELLINGS = (
    PASSWORD,
    quote(PASSWORD, safe=""),
    base64.b64encode(f"pu:{PASSWORD}".encode()).decode(),
)
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def closing_port() -> Iterator[tuple[int, list[int]]]:
    """A port that accepts each connection and closes it without a byte, and the list of
    the connections it took (one entry each)."""
    accepted: list[int] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def close_each() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            connection.close()

    thread = threading.Thread(target=close_each, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join()
        server.close()


def _refused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("proxy", ["refused", "closes"])
@pytest.mark.parametrize("scheme", ["https", "http"])
def test_no_proxy_password_when_the_proxy_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    closing_port: tuple[int, list[int]],
    proxy: str,
    scheme: str,
) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    port, accepted = closing_port
    if proxy == "refused":
        port = _refused_port()
    monkeypatch.setenv(f"{scheme}_proxy", f"http://pu:{quote(PASSWORD, safe='')}@127.0.0.1:{port}")
    config = config_from_mapping(
        {
            "mixpanel": {
                "api_host": f"{scheme}://mixpanel.example",
                "allow_insecure_http": True,
                "token": "tok",
            },
            "routes": [{"transport": "direct"}],
            "transports": {
                "direct": {
                    "type": "http",
                    "backoff_base": 0.01,
                    "backoff_cap": 0.02,
                    "retry_budget": 0.5,
                    "connect_timeout": 0.5,
                    "read_timeout": 0.5,
                }
            },
        }
    )
    caplog.set_level(logging.DEBUG)
    client = Mixpanel("tok", config=config)
    shown = [repr(client)]
    try:
        with pytest.raises(DeliveryError) as raised:
            client.import_data("tok", "u-1", "Old", int(time.time()) - 60)
    finally:
        shown.append(repr(client.close(5)))
    error = raised.value
    shown += [str(error), repr(error), "".join(traceback.format_exception(error))]
    shown += [caplog.text] + [repr(record.__dict__) for record in caplog.records]
    everything = "\n".join(shown)
    # The proxy was tried: it took connections, or the error names its port.
    assert accepted if proxy == "closes" else f"127.0.0.1:{port}" in str(error)
    for spelling in SPELLINGS:
        assert spelling not in everything
