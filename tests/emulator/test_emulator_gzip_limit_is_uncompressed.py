"""The body limit is on the uncompressed size (MIXPANEL_API.md): a gzip body whose compressed
bytes are a little over the limit, inflating to exactly the limit, is accepted."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
LIMIT = 100_000


def post_gzip(emulator: Emulator, body: bytes) -> requests.Response:
    return requests.post(
        emulator.base_url + "/track",
        data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )


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
        answer = post_gzip(emulator, body)
        assert (answer.status_code, answer.text) == (200, "1")
        assert len(emulator.records("track")) == 1


def test_a_gzip_stream_flushed_after_each_record_is_judged_on_what_it_inflates_to(
    make_event: MakeEvent,
) -> None:
    """A streaming writer flushes after each record: about 5 bytes of framing each, so 2,000
    small records come to some 10 KB more than they carry. Refused (413) while under the limit
    inflated, since the body was read only up to 1 KiB past the limit."""
    records = [orjson.dumps(make_event(pad=f"{i:04d}")) for i in range(2000)]
    text = b"[" + b",".join(records) + b"]"
    limit = len(text) + 100
    compressor = zlib.compressobj(0, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b"[")]
    for i, record in enumerate(records):
        parts.append(compressor.compress((b"," if i else b"") + record))
        parts.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    parts.append(compressor.compress(b"]") + compressor.flush())
    body = b"".join(parts)
    assert gzip.decompress(body) == text
    assert len(body) > limit + 1024  # past the old bound
    with Emulator(max_body_bytes=limit) as emulator:
        answer = post_gzip(emulator, body)
        assert (answer.status_code, answer.text) == (200, "1")
        assert len(emulator.records("track")) == 2000
        # Inflating past the limit is still refused, however the stream is written.
        too_big = gzip.compress(text + b" " * 200, compresslevel=0)
        assert post_gzip(emulator, too_big).status_code == 413
