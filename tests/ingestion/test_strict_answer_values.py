"""Values in Mixpanel's answers read as strictly as their specification writes them; over
real sockets (a scripted server).

``failed_records`` took a JSON ``true``/``false`` index for record 1/0, and ``Retry-After``
was read with ``float()``, which also takes ``1_0`` (10 s) and ``1e3``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.ingestion.classify import parse_retry_after
from mixpanel_core.settings import MixpanelSettings

from .conftest import TOKEN, RecordingWait, event, import_event
from .scripted import ScriptedServer, answer, raw

pytestmark = pytest.mark.integration

OK = answer(raw("200 OK", b'{"status": 1, "error": null}'))
FAST = HttpOptions(
    backoff_base=0.001, backoff_cap=0.002, rate_limit_base=0.001, rate_limit_cap=0.002
)


def client_for(server: ScriptedServer) -> IngestionClient:
    return IngestionClient(MixpanelSettings(api_host=server.base_url, token=TOKEN), FAST)


def test_a_boolean_index_in_failed_records_names_no_record(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """``"index": true`` is not record 1: record 0 is named, one record imported, and the
    third neither imported nor named, so which records failed cannot be told."""
    body = {
        "code": 400,
        "error": "some data points in the request failed validation",
        "num_records_imported": 1,
        "status": "Bad Request",
        "failed_records": [
            {"index": 0, "insert_id": "a", "field": "properties.time", "message": "too old"},
            {"index": True, "insert_id": "b", "field": "properties.time", "message": "too old"},
        ],
    }
    server = scripted(answer(raw("400 Bad Request", json.dumps(body).encode())))
    client = client_for(server)

    result = client.send_batch("import", [import_event() for _ in range(3)])

    assert [r.status for r in result.reports] == [DeliveryStatus.FAILED] * 3
    assert "which records failed cannot be told" in (result.reports[1].reason or "")


@pytest.mark.parametrize("value", ["1_0", "1e3", "1E2", "+5", "-5", "0x10", ".5"])
def test_a_retry_after_that_rfc_9110_does_not_allow_is_ignored(
    scripted: Callable[..., ScriptedServer], value: str
) -> None:
    server = scripted(answer(raw("503 Service Unavailable", b"{}", f"Retry-After: {value}")), OK)
    wait = RecordingWait()

    result = client_for(server).send_batch("track", [event()], wait=wait)

    assert result.ok
    assert len(wait.delays) == 1
    assert wait.delays[0] <= FAST.backoff_cap, f"{value!r} was read as {wait.delays[0]} s"
    assert parse_retry_after(value) is None


@pytest.mark.parametrize(("value", "seconds"), [("3", 3.0), ("0.5", 0.5), (" 2 ", 2.0)])
def test_a_retry_after_of_digits_is_honoured(
    scripted: Callable[..., ScriptedServer], value: str, seconds: float
) -> None:
    server = scripted(answer(raw("503 Service Unavailable", b"{}", f"Retry-After: {value}")), OK)
    wait = RecordingWait()

    result = client_for(server).send_batch("track", [event()], wait=wait)

    assert result.ok
    assert wait.delays == [seconds]
