"""``run(until_caught_up=True)`` ends only once the group committed every partition's end, not
as soon as it committed something.

docs/forwarder.md: ``--until-caught-up`` delivers everything that was in the topic when it
started, then exits 0. Exiting at the first commit short of the end would report a backfill
done with records still unread (nothing lost: they stay uncommitted, but nobody is told).
Unit test with the scripted consumer of ``test_loop``: the partition's second half is fetched
only after the forwarder has asked the group's commits once, so that an early exit is seen.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, Wait
from mixpanel_core.messages import Endpoint, Message

from .test_loop import TOPIC, Record, ScriptedConsumer, _partition, _records

END = 10
EXIT_BOUND = 10.0


class GroupReader:
    """The group's committed offsets, as the forwarder's own commits left them."""

    def __init__(self, consumer: ScriptedConsumer) -> None:
        self.consumer = consumer
        self.asked = 0

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}

    def end_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return {partition: END for partition in partitions}

    def committed(self, partition: Any) -> int | None:
        self.asked += 1
        offsets = [commit[partition] for commit in self.consumer.commits if partition in commit]
        return max(offsets, default=None)

    def close(self, autocommit: bool = False, timeout_ms: int | None = None) -> None:
        pass


class SlowSecondHalf(ScriptedConsumer):
    """Hands out the second batch only once the group's commits were asked for."""

    reader: GroupReader

    def poll(self, timeout_ms: int) -> dict[Any, list[Record]]:
        if self.polls and len(self.script) == 1 and not self.reader.asked:
            self.polls += 1
            return {}
        return super().poll(timeout_ms)

    def highwater(self, partition: Any) -> int | None:
        return END


def test_the_run_goes_on_until_the_group_committed_the_end() -> None:
    p0 = _partition(0)
    consumer = SlowSecondHalf([p0])
    reader = consumer.reader = GroupReader(consumer)
    consumer.script = [{p0: _records(0, range(5))}, {p0: _records(0, range(5, END))}]
    consumer.before_poll[1] = lambda: consumer.listener.on_partitions_assigned({p0})
    delivered: list[Message] = []

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        delivered.extend(messages)
        return [DeliveryReport(m, DeliveryStatus.ACCEPTED, "test", attempts=1) for m in messages]

    config = ForwarderConfig(source="bus", on_poison="stop", linger=0.0, log_interval=0.0)
    forwarder = Forwarder(consumer, TOPIC, deliver, config, group_reader=reader)

    raised: list[BaseException] = []

    def run() -> None:
        try:
            forwarder.run(until_caught_up=True)
        except BaseException as exc:  # handed to the test, not lost in the thread
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(EXIT_BOUND)

    assert not thread.is_alive(), f"not caught up after {EXIT_BOUND}s"
    assert raised == []
    assert len(delivered) == END
    assert consumer.commits[-1] == {p0: END}
