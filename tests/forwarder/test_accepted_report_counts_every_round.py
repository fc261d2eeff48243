"""The ACCEPTED report of a record tried again after a failed round counts the requests of
every round (delivery_rounds.py), as its dead letter's ``dead-letter-attempts`` header would
had Mixpanel rejected it: a ``mixpanel_delivered`` hook that watches ``report.attempts`` sees
the retries an outage cost, not just the last round's request."""

from __future__ import annotations

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus

from .test_loop import ScriptedConsumer, _partition, _records, run_rounds


def test_a_record_accepted_in_its_second_round_is_reported_with_both_requests() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(1))}]
    seen: list[DeliveryReport] = []

    run_rounds(consumer, [DeliveryStatus.FAILED, DeliveryStatus.ACCEPTED], seen.append)

    assert consumer.commits == [{p0: 1}]
    assert [(report.status, report.attempts) for report in seen] == [(DeliveryStatus.ACCEPTED, 2)]
