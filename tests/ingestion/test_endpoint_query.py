"""A query in ``[mixpanel] urls.NAME`` (and the compat ``events_url=``) is sent as written, the
client's own parameters joined after it; no message about a URL quotes its query."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import ConfigError, wire
from mixpanel_core.compat import ServiceAccountCredentials
from mixpanel_core.compat_consumers import Consumer
from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.emulator.ingest import IngestRequest, IngestService, Reply
from mixpanel_core.ingestion import IngestionClient

from .conftest import FAST, TOKEN, event, import_event
from .scripted import answer, raw

SECRET = "S3CRET-in-test"


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, str]]]:
    """The endpoint and query of every ingestion request the emulator serves."""
    seen: list[tuple[str, dict[str, str]]] = []
    handle = IngestService.handle

    def recording(self: IngestService, request: IngestRequest) -> Reply:
        seen.append((request.endpoint, dict(request.query)))
        return handle(self, request)

    monkeypatch.setattr(IngestService, "handle", recording)
    return seen


@pytest.mark.integration
def test_a_query_in_urls_reaches_mixpanel_with_the_clients_own_after_it(
    mixpanel_emulator: Emulator, queries: list[tuple[str, dict[str, str]]]
) -> None:
    """a40a115 refused both URLs; before it they were sent, as now."""
    base = mixpanel_emulator.base_url
    document = {
        "mixpanel": {
            "token": TOKEN,
            "urls": {"track": f"{base}/track?ip=1", "import": f"{base}/import?ip=1"},
        }
    }
    client = IngestionClient(config_from_mapping(document).mixpanel, FAST)
    try:
        tracked = client.send_batch("track", [event()]).reports
        imported = client.send_batch("import", [import_event()]).reports
    finally:
        client.close()
    assert [r.status for r in (*tracked, *imported)] == [DeliveryStatus.ACCEPTED] * 2
    assert queries == [("track", {"ip": "1"}), ("import", {"ip": "1", "strict": "1"})]
    assert len(mixpanel_emulator.records("track")) == len(mixpanel_emulator.records("import")) == 1


@pytest.mark.integration
def test_a_query_in_the_compat_events_url_reaches_mixpanel(
    mixpanel_emulator: Emulator, queries: list[tuple[str, dict[str, str]]]
) -> None:
    consumer = Consumer(events_url=f"{mixpanel_emulator.base_url}/track?ip=1")
    consumer.send("events", wire.dumps_str(event().record))
    assert queries == [("track", {"ip": "1"})]
    assert len(mixpanel_emulator.records("track")) == 1


@pytest.mark.parametrize(
    ("mixpanel", "message"),
    [
        (
            {"urls": {"track": f"http://10.0.0.5/track?key={SECRET}"}},
            "mixpanel.urls.track: 'http://10.0.0.5/track?...' would send credentials and data "
            "unencrypted",
        ),
        (
            {"urls": {"track": f"https://example.com:0/track?key={SECRET}"}},
            "mixpanel.urls.track: 'https://example.com:0/track?...' has an invalid port",
        ),
        (
            {"urls": {"track": f"https://example.com/track?key={SECRET}#top"}},
            "mixpanel.urls.track: 'https://example.com/track?...' has a fragment (#...)",
        ),
        (
            {"api_host": f"https://example.com/?key={SECRET}"},
            "mixpanel.api_host: 'https://example.com/?...' has a query (not shown here",
        ),
    ],
)
def test_an_error_about_a_url_with_a_query_does_not_show_the_query(
    mixpanel: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"mixpanel": mixpanel})
    assert str(caught.value).startswith(message)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("api_host", "shown"),
    [
        ("http://127.0.0.1:0", "'http://127.0.0.1:0'"),
        ("example.com:0", "'example.com:0'"),
        ("https://example.com:99999/mp/", "'https://example.com:99999/mp/'"),
    ],
)
def test_a_bad_port_in_api_host_quotes_what_was_written(api_host: str, shown: str) -> None:
    """It quoted 'http://127.0.0.1:0/track', a URL the user never wrote."""
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"mixpanel": {"api_host": api_host}})
    assert str(caught.value) == (
        f"mixpanel.api_host: {shown} has an invalid port; it must be a number from 1 to 65535"
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("query", "sent"),
    [
        ("strict=0", "strict=0&ip=0&project_id=12345"),
        ("ip=1&strict=0", "ip=1&strict=0&project_id=12345"),
        ("project_id=999", "project_id=999&strict=1&ip=0"),
    ],
)
def test_a_parameter_the_import_url_says_is_not_said_again_by_the_client(
    scripted: Any, query: str, sent: str
) -> None:
    """``import_url=".../import?strict=0"`` sent ``strict=0&strict=1``: two values that
    contradict each other (review R61 F2). The URL's own is sent, the client's left out."""
    server = scripted(
        answer(raw("200 OK", b'{"code": 200, "num_records_imported": 1, "status": "OK"}'))
    )
    credentials = ServiceAccountCredentials("sa-user", "sa-secret", "12345")
    consumer = Consumer(import_url=f"{server.base_url}/import?{query}", credentials=credentials)
    consumer.send("imports", wire.dumps_str(import_event().record))
    ((head, _),) = server.requests
    assert head.split(b" ")[1].decode() == f"/import?{sent}"
