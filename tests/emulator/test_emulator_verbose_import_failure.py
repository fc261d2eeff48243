"""A verbose /import that refuses records never answers ``status: 1``.

The official SDK posts ``verbose=1`` to /import and takes ``status == 1`` for success, so an
answer of 1 to a strict import with failed records would read as every record imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]


def test_a_verbose_strict_import_with_a_failed_record_answers_status_0(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    answer = requests.post(
        mixpanel_emulator.base_url + "/import",
        json=[make_event(), make_event(time=1.0)],
        params={"project_id": "12345", "strict": "1", "verbose": "1"},
        auth=("sa-user", "sa-secret"),
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["status"] == 0
    assert body["error"]
    assert body["num_records_imported"] == 1
    assert [entry["index"] for entry in body["failed_records"]] == [1]
