"""Rules of a whole request, on every endpoint it concerns (MIXPANEL_API.md): a body over the
limit is a 413 with Mixpanel's body on all four endpoints, however far over it is; ``strict=1``
sent as a form field, next to ``data=``, makes /import report its failed records as the query
parameter does; a JSON Content-Type with parameters (``; charset=utf-8``) is still JSON.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
LIMIT = 4000
SERVICE_ACCOUNT = ("sa-user", "sa-secret")
PROJECT = {"project_id": "12345"}


def _record(endpoint: str, number: int) -> dict[str, Any]:
    """A valid record for ``endpoint`` (not counting its size), padded to about 300 bytes."""
    pad = "p" * 250
    if endpoint == "engage":
        return {"$token": TOKEN, "$distinct_id": f"u{number}", "$set": {"pad": pad}}
    if endpoint == "groups":
        return {"$token": TOKEN, "$group_key": "k", "$group_id": f"g{number}", "$set": {"pad": pad}}
    properties = {
        "token": TOKEN,
        "distinct_id": f"u{number}",
        "time": time.time(),
        "$insert_id": f"i{number}",
        "pad": pad,
    }
    return {"event": "E", "properties": properties}


def _padded(records: list[dict[str, Any]], size: int) -> bytes:
    """The records' JSON array, padded with spaces (still valid JSON) to exactly ``size`` bytes."""
    body = orjson.dumps(records)
    assert len(body) <= size
    return body[:-1] + b" " * (size - len(body)) + b"]"


# Just over: refused once read. Far over: refused while being read (the emulator reads a body
# only up to a little past the limit), a path of its own.
@pytest.mark.parametrize("over", [1, 10 * LIMIT], ids=["just-over", "far-over"])
@pytest.mark.parametrize("endpoint", ["track", "engage", "groups", "import"])
def test_a_body_over_the_limit_is_413_with_mixpanels_body_on_every_endpoint(
    endpoint: str, over: int
) -> None:
    records = [_record(endpoint, number) for number in range(LIMIT // 400)]
    with Emulator(max_body_bytes=LIMIT) as emulator:
        url = f"{emulator.base_url}/{endpoint}"
        options: dict[str, Any] = {
            "headers": {"Content-Type": "application/json"},
            "auth": SERVICE_ACCOUNT,
            "params": {**PROJECT, "verbose": "1"},
            "timeout": 30,
        }

        at_limit = requests.post(url, data=_padded(records, LIMIT), **options)
        too_large = requests.post(url, data=_padded(records, LIMIT + over), **options)

        assert at_limit.status_code == 200, at_limit.text
        assert too_large.status_code == 413
        assert too_large.json() == {
            "code": 413,
            "error": f"request exceeds max limit of {LIMIT} bytes",
            "status": "Payload Too Large",
        }
        assert emulator.records(endpoint) == records
        assert emulator.stats()["requests"][endpoint] == {"200": 1, "413": 1}


def test_strict_sent_as_a_form_field_reports_the_failed_records(
    mixpanel_emulator: Emulator,
) -> None:
    # The official SDK sends its fields next to data= in the form, not in the query.
    good, bad = _record("import", 1), _record("import", 2)
    bad["properties"]["time"] = 1000  # before 1971
    form = {"data": orjson.dumps([good, bad]).decode(), "strict": "1"}

    answer = requests.post(
        mixpanel_emulator.base_url + "/import",
        data=form,
        params=PROJECT,
        auth=SERVICE_ACCOUNT,
        timeout=30,
    )

    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["num_records_imported"] == 1
    assert [(entry["index"], entry["field"]) for entry in body["failed_records"]] == [
        (1, "properties.time")
    ]
    assert mixpanel_emulator.records("import") == [good]


@pytest.mark.parametrize("endpoint", ["track", "engage", "groups", "import"])
@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON ;charset=UTF-8"]
)
def test_a_json_content_type_with_parameters_is_read_as_json(
    mixpanel_emulator: Emulator, endpoint: str, content_type: str
) -> None:
    records = [_record(endpoint, 1), _record(endpoint, 2)]

    answer = requests.post(
        f"{mixpanel_emulator.base_url}/{endpoint}",
        data=orjson.dumps(records),
        headers={"Content-Type": content_type},
        params={**PROJECT, "verbose": "1"},
        auth=SERVICE_ACCOUNT,
        timeout=30,
    )

    assert answer.status_code == 200, answer.text
    assert mixpanel_emulator.records(endpoint) == records
