"""Under ``on_poison = "stop"`` the forwarder stops at the earliest record of a partition to stop
on, even one found after a later record was.

A poison record read at offset 4 asks for the stop; the records read before it are delivered
first, and Mixpanel rejects the one at offset 1. The stop is at 1: it is what holds the
partition's commit, and what a restart meets first. Saying offset 4 would give the wrong advice
(wait for Mixpanel to take offset 1, which it never will). Unit test with the scripted
consumer of ``test_loop``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.config import ForwarderConfig, ForwarderError
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, Wait
from mixpanel_core.messages import Endpoint, Message

from .test_loop import TOPIC, ScriptedConsumer, _partition, _records
from .test_loop_stopping import _poison


def test_a_record_rejected_before_the_poison_is_where_the_forwarder_stops() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: [*_records(0, range(4)), _poison(0, 4)]}]

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        return [
            DeliveryReport(m, DeliveryStatus.REJECTED if i == 1 else DeliveryStatus.ACCEPTED, "t")
            for i, m in enumerate(messages)
        ]

    config = ForwarderConfig(source="bus", on_poison="stop", linger=0.0, log_interval=0.0)
    forwarder = Forwarder(consumer, TOPIC, deliver, config)

    with pytest.raises(ForwarderError) as stopped:
        forwarder.run()

    said = str(stopped.value)
    assert said.startswith("stopping at events[0]@1 (delivery)"), said
    assert "events[0]@4" not in said
    assert consumer.commits == [{p0: 1}]
