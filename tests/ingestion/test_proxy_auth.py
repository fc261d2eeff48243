"""A proxy answering 407 Proxy Authentication Required stops the call at once.

Retrying cannot fix the proxy's credentials, which every request carries: a 407 to the
``CONNECT`` of an ``https://`` request was retried as a network failure until the budget ran
out, and a 407 to a plain ``http://`` request was taken as Mixpanel rejecting the records. Now
either raises ``AuthenticationError`` saying that the proxy refused its credentials, and the
proxy URL's password appears in no error, report, log or repr.

Over real sockets: the scripted server of the first audit plays the proxy.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.ingestion import HttpOptions, IngestionClient, Verdict
from mixpanel_core.ingestion.classify import classify_response
from mixpanel_core.messages import ImportAuth, ImportEvent
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

from .conftest import TOKEN, RecordingWait, event, import_event
from .scripted import ScriptedServer, answer, raw

pytestmark = pytest.mark.integration

USER, PASSWORD = "proxy-user", "pr0xy-p@ss:w0rd"
QUOTED = "pr0xy-p%40ss%3Aw0rd"
"""The password as the proxy URL spells it (percent-encoded)."""
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
"""What goes on the wire, in ``Proxy-Authorization``."""

PROXY_AUTH_REQUIRED = answer(
    raw(
        "407 Proxy Authentication Required",
        b"<html><body>Access denied: authentication required</body></html>",
        'Proxy-Authenticate: Basic realm="corporate"',
    )
)
PATIENT = HttpOptions(backoff_base=0.001, backoff_cap=0.002, max_retries=5, retry_budget=10)
"""Room for five retries: a 407 must use none of them."""

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@pytest.fixture
def proxy() -> Iterator[ScriptedServer]:
    with ScriptedServer([PROXY_AUTH_REQUIRED]) as server:
        yield server


def proxy_url(proxy: ScriptedServer, credentials: bool = True) -> str:
    address = proxy.base_url.removeprefix("http://")
    return f"http://{USER}:{QUOTED}@{address}" if credentials else f"http://{address}"


def assert_never_shown(*texts: str) -> None:
    for text in texts:
        for secret in (PASSWORD, QUOTED, BASIC, "pr0xy-p"):
            assert secret not in text


def test_a_407_to_connect_stops_at_once_and_names_the_proxy_not_its_password(
    proxy: ScriptedServer,
    environment: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    environment.setenv("HTTPS_PROXY", proxy_url(proxy))
    settings = MixpanelSettings(api_host="api.mixpanel.example", token=TOKEN)
    client = IngestionClient(settings, PATIENT)
    wait = RecordingWait()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as caught:
        client.send_batch("track", [event(), event()], wait=wait)

    assert len(proxy.requests) == 1, "not retried"
    assert wait.delays == []
    assert proxy.requests[0][0].startswith(b"CONNECT api.mixpanel.example:443 ")
    assert f"proxy-authorization: Basic {BASIC}".encode() in proxy.requests[0][0]
    error = caught.value
    message = str(error)
    assert message.startswith(
        f"The proxy {proxy.base_url} (from HTTPS_PROXY, with a user name and password), "
        "not Mixpanel, refused the request to /track"
    )
    assert "407 Proxy Authentication Required" in message
    assert "Retrying cannot help" in message
    reports = error.reports
    assert [r.status for r in reports] == [DeliveryStatus.FAILED] * 2
    assert [(r.http_status, r.attempts) for r in reports] == [(407, 1)] * 2
    assert reports[0].reason == (
        "the proxy refused the CONNECT tunnel: HTTP 407 Proxy Authentication Required"
    )
    assert_never_shown(
        message,
        repr(error),
        *(str(r) for r in reports),
        *(repr(r) for r in reports),
        repr(client),
        repr(client._http),
        caplog.text,
    )


def test_a_407_to_a_plain_http_request_stops_at_once_and_is_not_a_rejection(
    proxy: ScriptedServer, environment: pytest.MonkeyPatch
) -> None:
    """Without a tunnel the 407 is an answer to the POST itself: it used to be taken as
    Mixpanel rejecting the records (REJECTED: dead-lettered as invalid, never resent)."""
    environment.setenv("HTTP_PROXY", proxy_url(proxy, credentials=False))
    settings = MixpanelSettings(
        api_host="http://ingest.example.invalid", token=TOKEN, allow_insecure_http=True
    )
    with pytest.raises(AuthenticationError) as caught:
        IngestionClient(settings, PATIENT).send_batch("track", [event()], wait=RecordingWait())

    assert len(proxy.requests) == 1
    assert proxy.requests[0][0].startswith(b"POST http://ingest.example.invalid/track ")
    message = str(caught.value)
    assert message.startswith(
        f"The proxy {proxy.base_url} (from HTTP_PROXY, without credentials), not Mixpanel, "
        "refused the request to /track (the proxy refused the request: HTTP 407 <html>"
    )
    [report] = caught.value.reports
    assert (report.status, report.http_status) == (DeliveryStatus.FAILED, 407)
    assert "Access denied: authentication required" in (report.reason or "")


def test_after_a_407_no_request_is_sent_for_the_rest_of_the_call(
    proxy: ScriptedServer, environment: pytest.MonkeyPatch
) -> None:
    """Unlike a 401, which stops only the refused Mixpanel credentials, a 407 stops every
    request of the call: they all go through the same proxy with the same credentials."""
    environment.setenv("HTTPS_PROXY", proxy_url(proxy))
    settings = MixpanelSettings(api_host="api.mixpanel.example", api_secret=Secret("s"))
    options = HttpOptions(max_retries=5, max_batch_records=1)
    other = ImportEvent(import_event().record, ImportAuth(api_secret=Secret("other")))
    messages = [import_event(), other, import_event()]
    with pytest.raises(AuthenticationError) as caught:
        IngestionClient(settings, options).send_batch("import", messages, wait=RecordingWait())

    assert len(proxy.requests) == 1
    reports = caught.value.reports
    assert [r.status for r in reports] == [DeliveryStatus.FAILED] * 3
    assert [r.attempts for r in reports] == [1, 0, 0]
    for report in reports[1:]:
        assert report.reason == (
            "not sent: the proxy refused its credentials (HTTP 407) for an earlier request"
        )
    assert str(caught.value).count("not Mixpanel") == 1, "one refusal, said once"


def test_a_407_without_a_configured_proxy_says_a_proxy_on_the_way_asked(
    environment: pytest.MonkeyPatch,
) -> None:
    """A transparent proxy (none configured) answering 407 for the target itself."""
    with ScriptedServer([PROXY_AUTH_REQUIRED]) as transparent:
        settings = MixpanelSettings(api_host=transparent.base_url, token=TOKEN)
        with pytest.raises(AuthenticationError) as caught:
            IngestionClient(settings, PATIENT).send_batch("track", [event()])
    assert len(transparent.requests) == 1
    assert str(caught.value).startswith(
        "A proxy on the way to /track, which none of HTTPS_PROXY, HTTP_PROXY or ALL_PROXY "
        "names, asked for credentials"
    )


@pytest.mark.parametrize(
    "password", ["s3cr#et", "s3cr/et", "s3cr?et", "2024/s3cr", "2024?s3cr", "2024#s3cr"]
)
def test_a_proxy_url_that_cannot_be_parsed_is_refused_without_quoting_it(
    environment: pytest.MonkeyPatch, password: str
) -> None:
    """urllib3's parse error quotes the URL, or the part before an unencoded ``#`` or ``/``:
    the password, or its start, went into the report. A password that starts with digits
    parses without an error, as the wrong proxy (host: the user name, port: those digits),
    with the rest in the path, query or fragment: every request went there, and the reason
    quoted it."""
    environment.setenv("HTTPS_PROXY", f"http://user:{password}@127.0.0.1:9")
    settings = MixpanelSettings(api_host="api.mixpanel.example", token=TOKEN)
    result = IngestionClient(settings, PATIENT).send_batch("track", [event()])
    [report] = result.reports
    assert (report.status, report.attempts) == (DeliveryStatus.FAILED, 1)
    assert report.reason is not None
    assert report.reason.startswith("the proxy URL in HTTPS_PROXY cannot be parsed")
    assert "s3cr" not in report.reason
    assert "2024" not in report.reason


def test_407_is_classified_as_the_proxys_refusal() -> None:
    answer = classify_response("track", 407, b"", {})
    assert (answer.verdict, answer.http_status, answer.proxy_refused) == (Verdict.AUTH, 407, True)
    assert answer.reason == "the proxy refused the request: HTTP 407 Proxy Authentication Required"
    assert not classify_response("import", 401, b"", {}).proxy_refused


def test_a_proxy_page_quoting_its_credentials_is_redacted_in_reasons_and_retry_lines(
    environment: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Review R30: a proxy's error page that quotes the request's headers (as many do) put
    its ``Proxy-Authorization`` into the reason, the dead letter and, since retries are
    logged, the log of every passing 503: the redactor knew only ``[mixpanel]``'s
    credentials."""
    page = (
        f"<html>Service Unavailable. Your request: proxy-authorization: Basic {BASIC} "
        f"(user {USER}, password {PASSWORD})</html>"
    ).encode()
    unavailable = answer(raw("503 Service Unavailable", page))
    with ScriptedServer([unavailable, unavailable, answer(raw("200 OK", b"1"))]) as proxy:
        environment.setenv("HTTP_PROXY", proxy_url(proxy))
        settings = MixpanelSettings(
            api_host="http://ingest.example.invalid", token=TOKEN, allow_insecure_http=True
        )
        client = IngestionClient(settings, PATIENT, name="proxied")
        caplog.set_level(logging.DEBUG)
        assert client.send_batch("track", [event()], wait=RecordingWait()).ok
        proxy.answers = [unavailable]
        [report] = client.send_batch("track", [event()], wait=RecordingWait()).reports
    assert len(proxy.requests) == 3 + 6
    assert report.status is DeliveryStatus.FAILED
    [line] = [r.getMessage() for r in caplog.records if r.name == "mixpanel_core.ingestion"]
    assert line.startswith("proxied: retrying 1 record(s) to /track in ")
    for text in (line, report.reason or ""):
        assert "proxy-authorization: Basic <HTTP_PROXY credentials (Basic)>" in text
        assert "password <HTTP_PROXY password>" in text
    assert_never_shown(caplog.text, report.reason or "", repr(report))


def test_a_proxy_password_is_redacted_only_from_the_answers_that_came_through_that_proxy(
    environment: pytest.MonkeyPatch,
) -> None:
    """Review R31: a short or common password ("retry") rewrote the answers of every URL,
    also those that no proxy carried."""
    unavailable = answer(raw("503 Service Unavailable", b"Please retry the request later."))
    with ScriptedServer([unavailable]) as direct:
        environment.setenv("HTTPS_PROXY", "http://user:retry@proxy.example.invalid:3128")
        settings = MixpanelSettings(api_host=direct.base_url, token=TOKEN)  # loopback: direct
        options = HttpOptions(max_retries=0)
        [report] = IngestionClient(settings, options).send_batch("track", [event()]).reports
    assert report.reason is not None
    assert report.reason.endswith("HTTP 503: Please retry the request later.")
