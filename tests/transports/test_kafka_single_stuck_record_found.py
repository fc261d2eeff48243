"""The watchdog's looks find a producer stuck on a single record: one record held, with neither
an acknowledgement nor a failure, for ``stuck_after`` seconds, is as stuck as the oldest of many
(its send number is the newest seen at the look that first saw it, not older than it)."""

from __future__ import annotations

from transports.kafka.health import ProducerHealth

from .kafka_cases import events


def test_one_record_held_past_stuck_after_marks_its_producer_broken() -> None:
    health = ProducerHealth(max_block=1.0, delivery_timeout=2.0)
    producer = object()  # no transaction manager: neither fatal nor without a producer id
    held = {7: events(1)[0]}
    assert health.why_broken(producer, held, now=100.0) is None
    assert health.why_broken(producer, held, now=100.0 + health.stuck_after - 0.5) is None
    broken = health.why_broken(producer, held, now=100.0 + health.stuck_after)
    assert broken is not None
    assert "held a record for more than" in broken


def test_a_record_sent_after_the_first_look_is_not_taken_for_stuck_by_it() -> None:
    health = ProducerHealth(max_block=1.0, delivery_timeout=2.0)
    producer = object()
    first, second = events(2)
    assert health.why_broken(producer, {7: first}, now=100.0) is None
    # Record 7 settled; record 8 was sent after the look at 100.0 saw 7 as the newest.
    assert health.why_broken(producer, {8: second}, now=100.0 + health.stuck_after) is None
