"""Second audit of the ingestion client: strict ``failed_records`` that do not account for the
request, the proxy environment variables users of requests rely on, and a 401 that stopped
records whose credentials Mixpanel never judged.

Over real sockets: the scripted server of the first audit (it keeps every request as received
and writes the answer a test scripts), playing Mixpanel or an HTTP proxy.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import AuthenticationError, ConfigError
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.ingestion.endpoints import endpoint_urls
from mixpanel_core.messages import ImportAuth, ImportEvent
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, RecordingWait, event, import_event, settings_for
from .scripted import ScriptedServer, answer, raw
from .test_client_audit import client_for

TRACK_OK = b'{"status": 1, "error": null}'


# -- strict /import: failed_records that do not account for every record ---------------------


def strict_400(imported: int, *indexes: int) -> bytes:
    failed = ",".join(
        f'{{"index": {i}, "insert_id": "x", "field": "properties.time", "message": "too old"}}'
        for i in indexes
    )
    return (
        f'{{"code": 400, "error": "some data points in the request failed validation", '
        f'"status": "Bad Request", "num_records_imported": {imported}, '
        f'"failed_records": [{failed}]}}'
    ).encode()


@pytest.mark.parametrize(
    ("imported", "indexes"),
    [
        pytest.param(0, (5,), id="index-out-of-range"),
        # The count adds up (1 imported + 1 named): taken as a record, both were ACCEPTED.
        pytest.param(1, (2,), id="index-one-past-the-last"),
        pytest.param(0, (-1,), id="negative-index"),
        pytest.param(0, (0, 0), id="duplicated-index-and-one-record-unnamed"),
    ],
)
def test_failed_records_that_leave_records_unaccounted_for_accept_none_of_them(
    scripted: Callable[..., ScriptedServer], imported: int, indexes: tuple[int, ...]
) -> None:
    """The sender accepted every record the answer did not name: a name pointing at no record
    of the request (or a count leaving one neither imported nor named) reported records
    Mixpanel did not import ACCEPTED, so they were lost without a word."""
    mixpanel = scripted(answer(raw("400 Bad Request", strict_400(imported, *indexes))))
    client = client_for(mixpanel)
    result = client.send_batch("import", [import_event(), import_event()], wait=RecordingWait())
    assert len(mixpanel.requests) == 1
    assert [r.status for r in result.reports] == [DeliveryStatus.FAILED] * 2
    reason = result.reports[0].reason
    assert reason is not None
    assert "some data points in the request failed validation" in reason
    assert "cannot be told" in reason
    assert len(result.undelivered) == 2  # kept, to be sent again


def test_a_named_record_twice_is_one_rejection_but_a_count_short_of_the_rest_fails_all(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """A record named twice (two of its fields failed) is rejected once, with both reasons,
    and the others accepted; but when the count of imported records leaves one record neither
    imported nor named, no record of the request is taken as imported."""
    mixpanel = scripted(
        answer(raw("400 Bad Request", strict_400(1, 0, 0))),
        answer(raw("400 Bad Request", strict_400(1, 1))),
    )
    client = client_for(mixpanel)
    result = client.send_batch("import", [import_event(), import_event()], wait=RecordingWait())
    assert [r.status for r in result.reports] == [DeliveryStatus.REJECTED, DeliveryStatus.ACCEPTED]
    assert result.reports[0].reason == "properties.time: too old; properties.time: too old"
    three = [import_event(), import_event(), import_event()]
    result = client.send_batch("import", three, wait=RecordingWait())
    assert [r.status for r in result.reports] == [DeliveryStatus.FAILED] * 3
    assert "imported 1 of 3 records and named 1 as failed" in (result.reports[0].reason or "")


# -- proxy environment variables --------------------------------------------------------------

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def clean_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_http_proxy_carries_requests_and_no_proxy_and_loopback_bypass_it(
    scripted: Callable[..., ScriptedServer],
    clean_proxy_environment: pytest.MonkeyPatch,
    mixpanel_emulator: Emulator,
) -> None:
    """requests sends through ``HTTP_PROXY``/``HTTPS_PROXY`` (unless ``NO_PROXY`` names the
    host); this client did not: behind a proxy-only egress every request failed on DNS."""
    proxy = scripted(answer(raw("200 OK", TRACK_OK)))
    env = clean_proxy_environment
    env.setenv("HTTP_PROXY", proxy.base_url)
    settings = MixpanelSettings(
        api_host="http://ingest.example.invalid", token=TOKEN, allow_insecure_http=True
    )
    no_retries = HttpOptions(max_retries=0)
    result = IngestionClient(settings, no_retries).send_batch("track", [event()])
    assert [r.status for r in result.reports] == [DeliveryStatus.ACCEPTED]
    assert len(proxy.requests) == 1
    request_line = proxy.requests[0][0].split(b"\r\n")[0]
    assert request_line == b"POST http://ingest.example.invalid/track HTTP/1.1"

    # NO_PROXY names the domain: no proxy (so the made-up host does not resolve).
    env.setenv("NO_PROXY", "localhost, .example.invalid")
    result = IngestionClient(settings, no_retries).send_batch("track", [event()])
    assert [r.status for r in result.reports] == [DeliveryStatus.FAILED]
    assert len(proxy.requests) == 1

    # Loopback never goes through a proxy: plain http is allowed to it only because the data
    # stays on this machine.
    env.delenv("NO_PROXY")
    client = IngestionClient(settings_for(mixpanel_emulator), FAST)
    result = client.send_batch("track", [event()], wait=RecordingWait())
    assert [r.status for r in result.reports] == [DeliveryStatus.ACCEPTED]
    assert len(proxy.requests) == 1
    assert len(mixpanel_emulator.records("track")) == 1


def test_https_proxy_tunnels_with_the_credentials_of_its_url_and_never_shows_them(
    scripted: Callable[..., ScriptedServer], clean_proxy_environment: pytest.MonkeyPatch
) -> None:
    """``HTTPS_PROXY=http://user:pass@proxy`` as requests takes it: a CONNECT to the target,
    with ``Proxy-Authorization``; a refused tunnel is retried like a network failure, and the
    reason names neither the password nor the header."""
    proxy = scripted(answer(raw("403 Forbidden")))
    host, port = proxy.base_url.removeprefix("http://").split(":")
    password = "pr0xy-p@ss"
    clean_proxy_environment.setenv("HTTPS_PROXY", f"http://proxy-user:pr0xy-p%40ss@{host}:{port}")
    settings = MixpanelSettings(api_host="api.mixpanel.example", token=TOKEN)
    options = HttpOptions(backoff_base=0.001, backoff_cap=0.002, max_retries=1)
    wait = RecordingWait()
    result = IngestionClient(settings, options).send_batch("track", [event()], wait=wait)
    assert len(proxy.requests) == 2  # retried once
    head = proxy.requests[0][0].decode()
    assert head.startswith("CONNECT api.mixpanel.example:443 HTTP/")
    credentials = base64.b64encode(f"proxy-user:{password}".encode()).decode()
    sent = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:])
    }
    assert sent["proxy-authorization"] == f"Basic {credentials}"
    [report] = result.reports
    assert report.status is DeliveryStatus.FAILED
    assert report.reason is not None
    assert "gave up after 2 attempt(s)" in report.reason
    assert password not in report.reason
    assert "pr0xy-p%40ss" not in report.reason
    assert credentials not in report.reason


# -- a 401 stops its own credentials, not the others of the call ------------------------------


def import_with_secret(secret: str) -> ImportEvent:
    message = import_event()
    return ImportEvent(message.record, ImportAuth(api_secret=Secret(secret)))


def by_authorization(
    mixpanel: list[ScriptedServer], refused: str
) -> Callable[[socket.socket], None]:
    """Answers 401 to requests authenticated with the api secret ``refused``, else success."""
    header = "Basic " + base64.b64encode(f"{refused}:".encode()).decode()

    def write(sock: socket.socket) -> None:
        head = mixpanel[0].requests[-1][0].decode()
        records = mixpanel[0].requests[-1][1].count(b'"event"')
        if f"Authorization: {header}" in head:
            sock.sendall(raw("401 Unauthorized", b'{"error": "Invalid credentials"}'))
        else:
            body = f'{{"code": 200, "num_records_imported": {records}, "status": "OK"}}'
            sock.sendall(raw("200 OK", body.encode()))

    return write


def test_a_401_for_one_api_secret_does_not_stop_records_with_other_credentials(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Records of one call with different credentials go in different requests; a 401 for the
    first group reported every later group FAILED, unsent, as refused "earlier", although
    Mixpanel never saw their credentials."""
    holder: list[ScriptedServer] = []
    mixpanel = scripted(by_authorization(holder, "revoked-secret"))
    holder.append(mixpanel)
    client = client_for(mixpanel, api_secret=Secret("good-secret"))
    refused, fine = import_with_secret("revoked-secret"), import_event()
    with pytest.raises(AuthenticationError) as caught:
        client.send_batch("import", [refused, fine, refused], wait=RecordingWait())
    statuses = [r.status for r in caught.value.reports]
    assert statuses == [DeliveryStatus.FAILED, DeliveryStatus.ACCEPTED, DeliveryStatus.FAILED]
    assert len(mixpanel.requests) == 2
    assert "api secret" in str(caught.value)
    assert "revoked-secret" not in str(caught.value)
    assert "good-secret" not in str(caught.value)
    assert "revoked-secret" not in repr(caught.value)


def test_a_401_keeps_the_outcomes_of_the_requests_already_accepted(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """A group sent as several requests: when a later one is refused, the earlier ones that
    Mixpanel accepted were reported FAILED too (dead-lettered, sent again)."""
    mixpanel = scripted(
        answer(raw("200 OK", b'{"code": 200, "num_records_imported": 1, "status": "OK"}')),
        answer(raw("401 Unauthorized", b'{"error": "Invalid credentials"}')),
    )
    options = HttpOptions(backoff_base=0.001, backoff_cap=0.002, max_batch_records=1)
    client = client_for(mixpanel, options, api_secret=Secret("s3cret"))
    messages = [import_event(), import_event(), import_event()]
    with pytest.raises(AuthenticationError) as caught:
        client.send_batch("import", messages, wait=RecordingWait())
    assert len(mixpanel.requests) == 2  # the third is not sent with refused credentials
    reports = caught.value.reports
    assert [r.status for r in reports] == [
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.FAILED,
        DeliveryStatus.FAILED,
    ]
    assert reports[2].reason is not None
    assert "not sent" in reports[2].reason


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"urls": {"import": "https://proxy.example/imp?tenant=a#frag"}}, "mixpanel.urls.import"),
        ({"urls": {"track": "https://proxy.example/track#tenant=a"}}, "mixpanel.urls.track"),
        ({"api_host": "https://proxy.example/mp?tenant=a"}, "mixpanel.api_host"),
    ],
)
def test_a_fragment_or_a_query_in_api_host_is_refused_without_quoting_it(
    settings: dict[str, object], key: str
) -> None:
    """A fragment in an override swallowed the strict=1 and project_id the client appends; a
    query in api_host got the endpoint's path appended inside it. A query may hold a key:
    neither is quoted (a query in urls.NAME is sent: see test_endpoint_query)."""
    with pytest.raises(ConfigError) as caught:
        endpoint_urls(MixpanelSettings(**settings))  # type: ignore[arg-type]
    assert str(caught.value).startswith(f"{key}: 'https://proxy.example/")
    assert "tenant" not in str(caught.value)
