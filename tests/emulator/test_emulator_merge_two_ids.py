"""A ``$merge`` names exactly two distinct_ids: a third is refused, not merged silently."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
PostImport = Callable[..., requests.Response]


def test_a_merge_of_three_ids_is_a_failed_record_and_one_of_two_is_imported(
    post_import: PostImport,
) -> None:
    # MIXPANEL_API.md: a merge is `$merge` with `properties.$distinct_ids` = [id1, id2]. An
    # emulator that checked "at least two" accepted three, so a client merging a whole list
    # would pass here and fail against Mixpanel.
    three = {"event": "$merge", "properties": {"$distinct_ids": ["a", "b", "c"], "token": TOKEN}}
    two = {"event": "$merge", "properties": {"$distinct_ids": ["a", "b"], "token": TOKEN}}
    answer = post_import([three, two])
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["num_records_imported"] == 1
    failed = [(entry["index"], entry["field"]) for entry in body["failed_records"]]
    assert failed == [(0, "properties.$distinct_ids")]
