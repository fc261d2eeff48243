"""The ACCEPTED report of a record tried again after a failed round counts the requests of
every round (delivery_rounds.py), as its dead letter's ``dead-letter-attempts`` header would
had Mixpanel rejected it: a ``mixpanel_delivered`` hook that watches ``report.attempts`` sees
the retries an outage cost, not just the last round's request."""

from __future__ import annotations

from collections.abc import Sequence

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, RetryPolicy, Wait
from mixpanel_core.messages import Endpoint, Message

from .test_loop import TOPIC, ScriptedConsumer, _config, _partition, _records


def test_a_record_accepted_in_its_second_round_is_reported_with_both_requests() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(1))}]
    rounds = [DeliveryStatus.FAILED, DeliveryStatus.ACCEPTED]
    seen: list[DeliveryReport] = []
    forwarder: Forwarder

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        status = rounds.pop(0)
        if not rounds:
            forwarder.request_stop()
        return [DeliveryReport(m, status, "test", attempts=1) for m in messages]

    forwarder = Forwarder(
        consumer,
        TOPIC,
        deliver,
        _config(),
        retry_policy=RetryPolicy(base=0.01, cap=0.01),
        report=seen.append,
    )
    forwarder.run()

    assert consumer.commits == [{p0: 1}]
    assert [(report.status, report.attempts) for report in seen] == [(DeliveryStatus.ACCEPTED, 2)]
