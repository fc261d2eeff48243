"""One record must be UNDER 1 MB of JSON: exactly 1,000,000 bytes is refused, one less is kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core import wire
from mixpanel_core.api_limits import MAX_RECORD_BYTES
from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
PostImport = Callable[..., requests.Response]


def _event_of(size: int, make_event: MakeEvent) -> dict[str, Any]:
    """An event whose compact JSON (as the emulator measures it) is exactly ``size`` bytes."""
    event = make_event(blob="")
    event["properties"]["blob"] = "x" * (size - len(wire.dumps(event)))
    assert len(wire.dumps(event)) == size
    return event


def test_a_record_of_exactly_1_mb_is_refused_and_one_byte_less_is_imported(
    make_event: MakeEvent, post_import: PostImport
) -> None:
    # MIXPANEL_API.md: one record's uncompressed JSON must be under 1 MB. Measuring with ">"
    # instead of ">=" accepted a record of exactly 1 MB; no test sent one at the boundary.
    at_limit = _event_of(MAX_RECORD_BYTES, make_event)
    under = _event_of(MAX_RECORD_BYTES - 1, make_event)
    answer = post_import([at_limit, under])
    assert answer.status_code == 400, answer.text[:500]
    body = answer.json()
    assert body["num_records_imported"] == 1
    assert [entry["index"] for entry in body["failed_records"]] == [0]
    assert "1 MB" in body["failed_records"][0]["message"]


def test_a_record_is_measured_alike_whatever_else_its_request_holds(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    """Review R66 F1: a record was measured only in a body of 1 MB or more, so a record
    sent in about 300 KB of JSON that comes to over 1 MB written compactly (``1e15`` is
    ``1000000000000000.0``) was imported alone and refused beside a large batch-mate."""
    numbers = "[" + ",".join(["1e15"] * 80) + "]"
    values = "[" + ",".join([numbers] * 254) + "]"
    record = make_event()
    head = wire.dumps(record)[:-2]  # without the closing "}}"
    extra = ",".join(f'"p{i}":{values}' for i in range(3)).encode()
    text = head + b"," + extra + b"}}"
    assert len(text) < MAX_RECORD_BYTES // 3
    assert len(wire.dumps(wire.loads(text))) >= MAX_RECORD_BYTES
    filler = wire.dumps(make_event(pad="x" * 255, more=["y" * 255] * 254))
    url = mixpanel_emulator.base_url + "/import"
    params = {"project_id": "12345", "strict": "1"}
    with requests.Session() as session:
        answers = [
            session.post(
                url,
                data=b"[" + b",".join(batch) + b"]",
                params=params,
                auth=("sa-user", "sa-secret"),
            )
            for batch in ([text], [text, *[filler] * 20])
        ]
    for answer in answers:
        assert answer.status_code == 400, answer.text[:300]
        failed = answer.json()["failed_records"]
        assert [entry["index"] for entry in failed] == [0]
        assert "1 MB" in failed[0]["message"]
    assert answers[1].json()["num_records_imported"] == 20
