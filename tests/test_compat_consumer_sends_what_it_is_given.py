"""What a consumer is given reaches Mixpanel as the official consumer would send it, and what it
cannot send is raised as ``MixpanelException``, which is what code written for the official
package catches.

Each test here killed a mutant that survived every other test: ``BufferedConsumer.send``
dropping ``api_secret``; a JSON array read as one record; a bad ``json_message`` or record
raising something other than ``MixpanelException``; a rejected record kept and sent again at
every flush; a batch after a failure not cut at ``max_size``; and the records the orphan thread
could not deliver left in the buffers for the exit hook to send and log a second time.
"""

from __future__ import annotations

import logging
from typing import Any

import mixpanel
import pytest

from mixpanel_core import wire
from mixpanel_core.compat import MixpanelException
from mixpanel_core.compat_consumers import BufferedConsumer, Consumer
from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
NOT_THIS_PROJECTS = "not-this-projects-token"


def test_a_buffered_import_carries_the_api_secret_it_was_given(
    mixpanel_emulator: Emulator,
) -> None:
    """The record's token is not the project's: only the secret lets the import in. The
    official client hands the consumer ``(api_key, api_secret)`` as one tuple; code that calls
    ``send`` itself passes ``api_secret`` on its own."""
    consumer = BufferedConsumer(api_host=mixpanel_emulator.base_url, retry_limit=0)
    client = mixpanel.Mixpanel(NOT_THIS_PROJECTS, consumer=consumer)
    client.import_data(
        NOT_THIS_PROJECTS, "user-1", "by the client", 1_700_000_000, api_secret="emulator-secret"
    )
    record = {
        "event": "by send",
        "properties": {
            "token": NOT_THIS_PROJECTS,
            "distinct_id": "user-1",
            "time": 1_700_000_000,
            "$insert_id": "by-send",
        },
    }
    consumer.send("imports", wire.dumps(record).decode(), api_secret="emulator-secret")
    consumer.flush()
    received = sorted(r["event"] for r in mixpanel_emulator.records("import"))
    assert received == ["by send", "by the client"]
    assert mixpanel_emulator.stats()["requests"]["import"] == {"200": 1}


def _event(n: int) -> dict[str, Any]:
    return {"event": "Batched", "properties": {"token": TOKEN, "distinct_id": f"user-{n}"}}


@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
def test_a_json_array_is_sent_as_its_records(
    mixpanel_emulator: Emulator, consumer_class: Any
) -> None:
    consumer = consumer_class(api_host=mixpanel_emulator.base_url)
    consumer.send("events", wire.dumps([_event(1), _event(2)]).decode())
    if isinstance(consumer, BufferedConsumer):
        consumer.flush()
    received = sorted(r["properties"]["distinct_id"] for r in mixpanel_emulator.records("track"))
    assert received == ["user-1", "user-2"]


@pytest.mark.parametrize("json_message", ["not json", "[1]", '{"event": 5}'])
@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
def test_what_cannot_be_sent_raises_mixpanel_exception(
    consumer_class: Any, json_message: str
) -> None:
    # The official consumer posts it, and raises MixpanelException for Mixpanel's refusal.
    with pytest.raises(MixpanelException):
        consumer_class(api_host="127.0.0.1:9", retry_limit=0).send("events", json_message)


@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
def test_an_array_holding_a_record_of_no_known_shape_is_refused_whole_naming_it(
    mixpanel_emulator: Emulator, consumer_class: Any
) -> None:
    """None of the text is sent (the caller could not tell which part went), and the error
    says which record it was (review R61 F1)."""
    valid = {"$token": TOKEN, "$distinct_id": "user-1", "$set": {"plan": "pro"}}
    no_operation = {"$token": TOKEN, "$distinct_id": "user-2"}
    consumer = consumer_class(api_host=mixpanel_emulator.base_url)
    with pytest.raises(MixpanelException) as raised:
        consumer.send("people", wire.dumps_str([valid, no_operation]))
    assert str(raised.value).startswith(
        "cannot send to /engage, nothing of the text was sent: record 1 of 2 (counted from 0): "
    )
    assert "needs one of $set" in str(raised.value)
    if isinstance(consumer, BufferedConsumer):
        consumer.flush()
    assert mixpanel_emulator.stats()["requests"].get("engage") is None


def test_a_rejected_record_is_done_not_sent_again_at_the_next_flush(
    mixpanel_emulator: Emulator,
) -> None:
    """Mixpanel refused it (an unknown token): sending it again cannot help, and would raise
    at every flush for ever after."""
    consumer = BufferedConsumer(max_size=10, api_host=mixpanel_emulator.base_url)
    mixpanel.Mixpanel(TOKEN, consumer=consumer).track("user-1", "kept")
    mixpanel.Mixpanel(NOT_THIS_PROJECTS, consumer=consumer).track("user-2", "refused")
    mixpanel.Mixpanel(TOKEN, consumer=consumer).track("user-3", "kept")
    with pytest.raises(MixpanelException, match=r"\(1 of 3 records not accepted\)"):
        consumer.flush()
    # The client may have cut the batch to find the record refused: however many requests.
    requests = mixpanel_emulator.stats()["requests"]["track"]
    consumer.flush()  # nothing left to send
    assert mixpanel_emulator.stats()["requests"]["track"] == requests
    received = {r["properties"]["distinct_id"] for r in mixpanel_emulator.records("track")}
    assert received == {"user-1", "user-3"}
    assert consumer._held.held() == 0


def test_what_failed_is_sent_again_in_batches_of_max_size(mixpanel_emulator: Emulator) -> None:
    """Three kept after a 503, then a fourth: two requests (3 and 1), as the official class
    cuts its buffer, never one of four."""
    mixpanel_emulator.fail_next(1, 503)
    consumer = BufferedConsumer(max_size=3, api_host=mixpanel_emulator.base_url, retry_limit=0)
    client = mixpanel.Mixpanel(TOKEN, consumer=consumer)
    for n in range(2):
        client.track(f"user-{n}", "Batched")
    with pytest.raises(MixpanelException):
        client.track("user-2", "Batched")  # the third fills the buffer: sent, and failed
    client.track("user-3", "Batched")
    assert mixpanel_emulator.stats()["requests"]["track"] == {"503": 1, "200": 2}
    assert mixpanel_emulator.stats()["accepted"]["track"] == 4


def test_what_the_orphan_thread_could_not_send_is_not_left_for_the_exit_hook(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The orphan thread and a consumer's exit hook may both come to the same buffers (the
    hook waits for the thread's lock). What the first could not deliver it logs and drops:
    the second then has nothing to send again, and nothing to log again."""
    mixpanel_emulator.fail_next(2, 503)
    consumer = BufferedConsumer(api_host=mixpanel_emulator.base_url, retry_limit=0)
    mixpanel.Mixpanel(TOKEN, consumer=consumer).track("user-1", "never delivered")
    buffers = consumer._held
    with caplog.at_level(logging.ERROR, "mixpanel_core.compat_consumers"):
        for when in ("after the consumer was freed without flush()", "at exit"):
            with buffers.lock:
                buffers.send_or_log(None, when)
    logged = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(logged) == 1, logged
    assert logged[0].startswith("BufferedConsumer: 1 record(s) not delivered after the consumer")
    assert mixpanel_emulator.stats()["requests"]["track"] == {"503": 1}
    assert buffers.held() == 0
