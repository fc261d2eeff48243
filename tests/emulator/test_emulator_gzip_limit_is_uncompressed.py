"""The body limit is on the uncompressed size (MIXPANEL_API.md): a gzip body whose compressed
bytes are a little over the limit, inflating to exactly the limit, is accepted."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
LIMIT = 100_000


def test_a_gzip_body_larger_than_the_limit_but_inflating_to_it_is_accepted(
    make_event: MakeEvent,
) -> None:
    event = make_event(pad="")
    event["properties"]["pad"] = "p" * (LIMIT - len(orjson.dumps(event)))
    text = orjson.dumps(event)
    assert len(text) == LIMIT
    # Level 0 stores the text: the gzip framing makes the body bigger than what it carries,
    # as incompressible data does. Refusing on the compressed size passed every other test.
    body = gzip.compress(text, compresslevel=0)
    assert len(body) > LIMIT
    with Emulator(max_body_bytes=LIMIT) as emulator:
        answer = requests.post(
            emulator.base_url + "/track",
            data=body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert (answer.status_code, answer.text) == (200, "1")
        assert len(emulator.records("track")) == 1
