"""An ``/import`` success whose ``num_records_imported`` is not an integer is not Mixpanel's
success answer: retried like any other, FAILED in the end, never taken as all accepted
(review R75 F5).

Before, ``"1"`` or ``1.0`` for 2 records skipped the shortfall check (``type(...) is not
int``) and both records were reported ACCEPTED, though the count said one was dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import attrs
import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, import_event
from .scripted import ScriptedServer, answer, raw


def imported(count: object) -> bytes:
    body = {"code": 200, "num_records_imported": count, "status": "OK"}
    return raw("200 OK", json.dumps(body).encode())


def client_for(server: ScriptedServer) -> IngestionClient:
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    return IngestionClient(settings, attrs.evolve(FAST, max_retries=1))


@pytest.mark.parametrize("count", ["1", 1.0, "2", 2.0, True, None], ids=repr)
def test_a_count_that_is_not_an_integer_is_not_taken_as_success(
    scripted: Callable[..., ScriptedServer], count: object
) -> None:
    server = scripted(answer(imported(count)))

    reports = client_for(server).send_batch("import", [import_event(), import_event()]).reports

    assert len(server.requests) == 2  # retried once, as max_retries allows
    assert {(r.status, r.maybe_applied) for r in reports} == {(DeliveryStatus.FAILED, True)}
    reason = reports[0].reason or ""
    assert "without Mixpanel's success answer" in reason
    assert "num_records_imported" in reason  # the body is quoted: the count can be seen


def test_an_integer_count_of_every_record_is_accepted(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(answer(imported(2)))

    reports = client_for(server).send_batch("import", [import_event(), import_event()]).reports

    assert [r.status for r in reports] == [DeliveryStatus.ACCEPTED] * 2
    assert len(server.requests) == 1
