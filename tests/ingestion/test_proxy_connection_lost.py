"""A connection through a forwarding proxy lost after the request went out, over real sockets.

urllib3 raises ``ProxyError('Unable to connect to proxy', ...)`` for any failure of a proxied
connection once it is closed, also for a request the proxy read whole and may have passed on
to Mixpanel. Such records were reported as never received (no "may have applied" in their
reason, ``maybe_applied`` false): a dead letter of a profile ``$add`` replayed on that word is
applied twice. And a pooled connection the proxy closed before answering was not made again
at once, as one to Mixpanel itself is (review R50, F2 and its aside).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.ingestion.call import MAYBE_APPLIED
from mixpanel_core.settings import MixpanelSettings

from .conftest import TOKEN, RecordingWait, event, profile
from .scripted import ScriptedServer, answer, raw
from .test_stale_connection import close_unanswered

pytestmark = pytest.mark.integration

OK = answer(raw("200 OK", b"1"))
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def through(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], IngestionClient]:
    """A client whose requests to a plain-HTTP Mixpanel go through the proxy at the URL given,
    with no retry."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)

    def client(proxy_url: str) -> IngestionClient:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        settings = MixpanelSettings(
            api_host="http://ingest.example.invalid", token=TOKEN, allow_insecure_http=True
        )
        options = HttpOptions(backoff_base=0.001, backoff_cap=0.002, max_retries=0)
        return IngestionClient(settings, options)

    return client


def test_a_request_the_proxy_read_and_never_answered_may_have_been_applied(
    scripted: Callable[..., ScriptedServer], through: Callable[[str], IngestionClient]
) -> None:
    proxy = scripted(close_unanswered)
    client = through(proxy.base_url)
    (report,) = client.send_batch("engage", [profile()], wait=RecordingWait()).reports

    assert len(proxy.requests) == 1  # read whole by the proxy
    assert report.status is DeliveryStatus.FAILED
    assert report.maybe_applied
    reason = report.reason or ""
    assert "the connection to the proxy was closed or reset: RemoteDisconnected" in reason
    assert reason.endswith(MAYBE_APPLIED)


def test_a_pooled_connection_the_proxy_closed_before_answering_is_used_again_at_once(
    scripted: Callable[..., ScriptedServer], through: Callable[[str], IngestionClient]
) -> None:
    proxy = scripted(OK, close_unanswered, OK)
    client = through(proxy.base_url)
    assert client.send_batch("track", [event()]).ok

    (report,) = client.send_batch("track", [event()], wait=RecordingWait()).reports

    assert (report.status, report.attempts) == (DeliveryStatus.ACCEPTED, 1)
    assert len(proxy.requests) == 3


def test_a_proxy_nobody_listens_on_received_nothing(
    through: Callable[[str], IngestionClient],
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    (report,) = (
        through(f"http://127.0.0.1:{port}")
        .send_batch("engage", [profile()], wait=RecordingWait())
        .reports
    )

    assert report.status is DeliveryStatus.FAILED
    assert not report.maybe_applied
    assert "ProxyError" in (report.reason or "")
    assert MAYBE_APPLIED not in (report.reason or "")
