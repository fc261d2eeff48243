"""While records put back after a failed round wait to be retried, nothing more is read.

docs/forwarder.md and the loop's docstring: between deliveries the partitions stay paused
while records wait to be retried, so what the forwarder holds stays bounded however long
Mixpanel fails. The full-batch rule bounds it too, but only at ``batch_records``: without the
pause for retries, a forwarder facing a failing Mixpanel keeps reading until a full batch is
held. Unit test with the scripted consumer of ``test_loop`` (which hands nothing out while a
partition it has records for is paused).
"""

from __future__ import annotations

from collections.abc import Sequence

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, RetryPolicy, Wait
from mixpanel_core.messages import Endpoint, Message

from .test_loop import TOPIC, ScriptedConsumer, _partition, _records


def test_the_round_after_a_failed_one_sends_only_the_records_put_back() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(3))}, {p0: _records(0, range(3, 6))}]
    rounds: list[int] = []
    forwarder: Forwarder

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        rounds.append(len(messages))
        if len(rounds) == 1:
            return [DeliveryReport(m, DeliveryStatus.FAILED, "test", attempts=1) for m in messages]
        if sum(rounds[1:]) == 6:
            forwarder.request_stop()
        return [DeliveryReport(m, DeliveryStatus.ACCEPTED, "test", attempts=1) for m in messages]

    config = ForwarderConfig(source="bus", on_poison="stop", linger=0.0, log_interval=0.0)
    forwarder = Forwarder(
        consumer, TOPIC, deliver, config, retry_policy=RetryPolicy(base=0.01, cap=0.01)
    )
    forwarder.run()

    assert rounds[:2] == [3, 3], f"records per round: {rounds}"
    assert sum(rounds[1:]) == 6
    assert consumer.commits[-1] == {p0: 6}
