"""A batch handed to a ``multiprocessing_queue``'s fallback: every message is offered, and one
the fallback refuses is reported (by the fallback, else by the producer), never dropped.

With the sender dead, the producer hands each message of its batch to the fallback. The first
refusal (a ``send`` that raises) used to end the hand-over: the messages after it were neither
offered nor reported, lost without a word but for the one error ``close()`` raised.
"""

from __future__ import annotations

import collections
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from mp_workers import TOKEN, ReportCounter

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.errors import QueueFullError, TransportError
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.messages import Message
from mixpanel_core.pipeline import Pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as started:
        yield started


def client_with(
    emulator: EmulatorProcess, fallback: dict[str, Any] | object, **options: Any
) -> tuple[Mixpanel, ReportCounter]:
    """Events go to ``default`` (``options`` added to its table), whose partial batch waits
    in the producer until closed; ``fallback`` (a table, or a transport object) is its
    fallback, also where profile updates go."""
    table = fallback if isinstance(fallback, dict) else {"type": "memory"}
    config = config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, "api_host": emulator.base_url},
            "transports": {
                "default": {
                    "type": "multiprocessing_queue",
                    "inner": "direct",
                    "fallback": "fb",
                    "linger": 60.0,
                    **options,
                },
                "direct": {"type": "buffered_http", "linger": 0.02},
                "fb": table,
            },
            "routes": [{"transport": "fb", "kinds": ["people"]}, {"transport": "default"}],
        }
    )
    counter = ReportCounter()
    transports = None if isinstance(fallback, dict) else {**config.transports, "fb": fallback}
    pipeline = Pipeline.from_config(config, transports, extra_plugins=[("counter", counter)])
    return Mixpanel(TOKEN, config=config, pipeline=pipeline), counter


def kill_the_sender(client: Mixpanel, emulator: EmulatorProcess) -> None:
    client.track("u-0", "Before")
    assert client.flush(timeout=20) == []
    emulator.wait_for_records(1, "track", timeout=30)
    process = client.pipeline.transport("default").supervisor.process  # type: ignore[attr-defined]
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    assert not process.is_alive()


def small_requests_kafka(broker: EmbeddedBroker) -> dict[str, Any]:
    """A ``kafka`` fallback that refuses at once (reporting FAILED, then raising) a record
    over 1,500 bytes, and takes the others."""
    return {
        "type": "kafka",
        "bootstrap_servers": broker.bootstrap_servers,
        "topic": "mixpanel",
        "producer": {"max_request_size": 1500},
    }


def outcomes(counter: ReportCounter) -> dict[int, list[str]]:
    """Per event ``i``, its reports as ``status@transport``."""
    found = collections.defaultdict(list)
    for report in counter.reports:
        if report.message is not None and "i" in report.message.properties:
            found[report.message.properties["i"]].append(
                f"{report.status.value}@{report.transport}"
            )
    return dict(found)


def test_a_closed_fallback_has_each_message_reported_failed_once(
    emulator: EmulatorProcess,
) -> None:
    client, counter = client_with(emulator, {"type": "buffered_http", "linger": 60.0})
    kill_the_sender(client, emulator)
    for i in range(5):
        client.track("u-1", "After", {"i": i})  # waiting in the producer's batch
    client.pipeline.transport("fb").close()  # refuses every message from now on

    left = client.close(timeout=20)

    assert sorted(message.properties["i"] for message in left) == list(range(5))
    assert outcomes(counter) == {i: ["failed@default"] for i in range(5)}
    reasons = {report.reason for report in counter.reports if report.transport == "default"}
    assert len(reasons) == 1
    assert "the fallback 'fb' refused it: TransportError" in reasons.pop()  # type: ignore[operator]


def test_a_message_kafka_refuses_does_not_keep_the_rest_from_it(
    emulator: EmulatorProcess, broker: EmbeddedBroker
) -> None:
    """Kafka refuses a record larger than ``max_request_size`` at once (reporting it FAILED,
    then raising): a refusal of that one record, not of the others."""
    kafka = small_requests_kafka(broker)
    client, counter = client_with(emulator, kafka)
    kill_the_sender(client, emulator)
    for i in range(5):
        client.track("u-1", "After", {"i": i, "pad": "x" * (3000 if i == 1 else 10)})

    client.close(timeout=30)

    found = outcomes(counter)
    assert found == {i: ["failed@fb" if i == 1 else "accepted@fb"] for i in range(5)}


class SlowRefuser:
    """A fallback that refuses every message after a wait, reporting none (as a transport
    timing out on a network it cannot reach would)."""

    def send(self, message: Message) -> None:
        time.sleep(0.4)
        raise TransportError("no answer")

    def flush(self, timeout: float | None = None) -> list[Message]:
        return []

    def close(self, timeout: float | None = None) -> list[Message]:
        return []


def test_a_fallback_refusing_after_the_close_deadline_leaves_the_rest_reported_unoffered(
    emulator: EmulatorProcess,
) -> None:
    """Each refusal takes 0.4 s: offering all twenty messages would hold close() 8 s, well
    past its bound of 2 s."""
    client, counter = client_with(emulator, SlowRefuser())
    kill_the_sender(client, emulator)
    for i in range(20):
        client.track("u-1", "After", {"i": i})
    started = time.monotonic()
    client.close(timeout=2)
    took = time.monotonic() - started

    assert took < 5, f"close(timeout=2) took {took:.1f}s"
    found = outcomes(counter)
    assert found == {i: ["failed@default"] for i in range(20)}, "one outcome each"
    unoffered = [
        report.message.properties["i"]
        for report in counter.reports
        if report.message is not None and "past the hand-over's bound" in (report.reason or "")
    ]
    assert unoffered, "the messages after the deadline were offered"


def test_a_full_fallback_stops_the_hand_over_at_its_first_queue_full(
    emulator: EmulatorProcess,
) -> None:
    """A fallback whose queue stayed full refuses each message after its own wait (0.5 s):
    after the first ``QueueFullError`` the rest are reported unoffered, where each was
    offered, holding close() 0.5 s per message until its deadline."""
    full = {"type": "buffered_http", "linger": 60.0, "max_queue_messages": 1, "block_timeout": 0.5}
    client, counter = client_with(emulator, full)
    kill_the_sender(client, emulator)
    for i in range(20):
        client.track("u-1", "After", {"i": i})
    emulator.client.stall()  # the fallback's queue (room for one) stays full
    try:
        client.close(timeout=3)
    finally:
        emulator.client.release()

    found = outcomes(counter)
    assert sorted(found) == list(range(20)), "every message has an outcome"
    assert all(len(statuses) == 1 for statuses in found.values()), found
    unoffered = [
        report.message.properties["i"]
        for report in counter.reports
        if report.message is not None and "its queue stayed full" in (report.reason or "")
    ]
    assert len(unoffered) >= 17, found


def test_a_full_fallback_drops_the_caller_s_message_once_and_raises_queue_full(
    emulator: EmulatorProcess,
) -> None:
    """Once the sender is found dead, each ``track()`` hands its message over itself: a full
    fallback's refusal reaches the caller as the ``QueueFullError`` it is, and the message is
    reported once, DROPPED by the fallback."""
    full = {"type": "buffered_http", "linger": 60.0, "max_queue_messages": 1, "block_timeout": 0.3}
    client, counter = client_with(emulator, full)
    kill_the_sender(client, emulator)
    emulator.client.stall()
    try:
        client.track("u-1", "After", {"i": 0})
        client.flush(timeout=2)  # finds the sender dead: message 0 in the fallback's request
        client.track("u-1", "After", {"i": 1})  # the fallback's queue is full now
        with pytest.raises(QueueFullError) as refused:
            client.track("u-1", "After", {"i": 2})
    finally:
        emulator.client.release()
    client.close(timeout=10)

    assert "refused 1 " in "\n".join(refused.value.__notes__)
    assert outcomes(counter)[2] == ["dropped@fb"]


def test_a_caller_s_full_batch_for_a_full_fallback_waits_once_not_once_per_message(
    emulator: EmulatorProcess,
) -> None:
    """The ``track()`` that fills a batch hands the whole batch over when the sender is dead.
    Against a fallback whose queue stays full, each refusal follows the fallback's 0.5 s wait:
    offered one by one, ten messages held the caller about 5 s (bounded only by the producer's
    ``block_timeout``, 10 s). After the first ``QueueFullError`` the rest are reported FAILED
    unoffered, and the caller, whose message is among them, gets the ``QueueFullError``."""
    full = {"type": "buffered_http", "linger": 60.0, "max_queue_messages": 1, "block_timeout": 0.5}
    client, counter = client_with(emulator, full, batch_size=10)  # block_timeout 10 s
    kill_the_sender(client, emulator)
    emulator.client.stall()  # the fallback's queue (room for one) stays full
    try:
        for i in range(9):
            client.track("u-1", "After", {"i": i})  # waiting in the producer's batch
        started = time.monotonic()
        with pytest.raises(QueueFullError):
            client.track("u-1", "After", {"i": 9})  # fills the batch: all ten handed over
        took = time.monotonic() - started
    finally:
        emulator.client.release()
    client.close(timeout=10)

    assert took < 3, f"the track() that handed ten messages over took {took:.1f}s"
    found = outcomes(counter)
    assert sorted(found) == list(range(10)), "every message has an outcome"
    assert all(len(statuses) == 1 for statuses in found.values()), found
    unoffered = [i for i, statuses in found.items() if statuses == ["failed@default"]]
    assert unoffered, found


def test_a_track_whose_own_message_the_fallback_took_does_not_raise(
    emulator: EmulatorProcess, broker: EmbeddedBroker
) -> None:
    """The ``track()`` filling a batch of two raised kafka's refusal of the other message,
    though its own was produced: the caller was told its event failed, and a
    ``multiprocessing_queue`` used as a fallback in its turn made its feeder report a
    delivered message FAILED."""
    kafka = small_requests_kafka(broker)
    client, counter = client_with(emulator, kafka, batch_size=2)
    kill_the_sender(client, emulator)
    client.track("u-1", "After", {"i": 1, "pad": "x" * 3000})  # waits in the batch
    client.track("u-1", "After", {"i": 2})  # fills it: both handed over, i=1 refused

    client.close(timeout=30)

    assert outcomes(counter) == {1: ["failed@fb"], 2: ["accepted@fb"]}


def test_what_close_returns_does_not_depend_on_whether_reports_are_read(
    emulator: EmulatorProcess, broker: EmbeddedBroker
) -> None:
    """With no plugin observing deliveries, transports report to ``ignore_report``: a record
    kafka refused (and reported) was not seen reported there, so ``close()`` returned it as
    given up by the queue, where with an observer it returned nothing."""
    kafka = small_requests_kafka(broker)
    client, _ = client_with(emulator, kafka)
    unobserved = Pipeline.from_config(client.pipeline.config)
    assert not unobserved.observed
    client = Mixpanel(TOKEN, config=client.pipeline.config, pipeline=unobserved)
    kill_the_sender(client, emulator)
    for i in range(3):
        client.track("u-1", "After", {"i": i, "pad": "x" * (3000 if i == 1 else 10)})

    assert client.close(timeout=30) == []


def test_a_record_too_large_for_the_fallback_s_queue_does_not_stop_the_hand_over(
    emulator: EmulatorProcess,
) -> None:
    """``buffered_http`` refuses at once, with ``QueueFullError``, a record larger than its
    whole ``max_queue_bytes``: its queue did not stay full, and the next message fits. Taken
    for a full queue, it left the rest of the batch reported FAILED unoffered."""
    small = {"type": "buffered_http", "linger": 0.02, "max_queue_bytes": 50_000}
    client, counter = client_with(emulator, small)
    kill_the_sender(client, emulator)
    for i in range(3):
        client.track("u-1", "After", {"i": i, "pad": "x" * (60_000 if i == 1 else 10)})

    assert client.close(timeout=20) == []

    # accepted: the emulator answered for them (close() returned once all had outcomes)
    assert outcomes(counter) == {0: ["accepted@fb"], 1: ["dropped@fb"], 2: ["accepted@fb"]}
