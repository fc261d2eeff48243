"""A producer without a producer id (kafka-python's idempotent producer, READY but with none)
counts as broken only when two of the watchdog's looks in a row see it so: lost "for good", as
``health`` says. Seen once, with an id in between, or a new producer, it is left alone (a
replacement fails nothing, but it costs a new producer and its connections)."""

from __future__ import annotations

import types

from transports.kafka.health import ProducerHealth


class TransactionManager:
    """What ``health`` asks of kafka-python's transaction manager."""

    def __init__(self) -> None:
        self.producer_id = False
        self._current_state = types.SimpleNamespace(name="READY")

    def has_fatal_error(self) -> bool:
        return False

    def is_transactional(self) -> bool:
        return False

    def has_producer_id(self) -> bool:
        return self.producer_id


def producer_without_an_id() -> types.SimpleNamespace:
    return types.SimpleNamespace(_transaction_manager=TransactionManager())


def test_a_producer_without_an_id_is_broken_at_the_second_look_only() -> None:
    health = ProducerHealth(max_block=1.0, delivery_timeout=2.0)
    producer = producer_without_an_id()
    assert health.why_broken(producer, {}, now=100.0) is None
    broken = health.why_broken(producer, {}, now=101.0)
    assert broken is not None
    assert "lost its producer id" in broken


def test_an_id_seen_between_two_looks_without_one_clears_the_suspicion() -> None:
    health = ProducerHealth(max_block=1.0, delivery_timeout=2.0)
    producer = producer_without_an_id()
    assert health.why_broken(producer, {}, now=100.0) is None
    producer._transaction_manager.producer_id = True
    assert health.why_broken(producer, {}, now=101.0) is None
    producer._transaction_manager.producer_id = False
    assert health.why_broken(producer, {}, now=102.0) is None


def test_a_new_producer_without_an_id_is_not_taken_for_the_suspect_it_replaced() -> None:
    health = ProducerHealth(max_block=1.0, delivery_timeout=2.0)
    assert health.why_broken(producer_without_an_id(), {}, now=100.0) is None
    assert health.why_broken(producer_without_an_id(), {}, now=101.0) is None
