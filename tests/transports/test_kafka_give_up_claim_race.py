"""A ``close()`` giving up and an acknowledgement claiming the same record at the same moment:
whoever pops it from ``unacknowledged`` reports it, so it is reported exactly once.

Both windows are a few bytecodes wide (a stress test with a real broker never hit them), so the
tests hold one side inside its window while the other runs: ``unacknowledged`` is replaced by a
dict that, at the one look the held side takes there, lets the other side run first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.messages import Message
from transports.kafka.acknowledgements import Acknowledgements
from transports.kafka.reports import Reports

from .kafka_cases import events

ACCEPTED = DeliveryStatus.ACCEPTED
FAILED = DeliveryStatus.FAILED

WAIT = 10.0
"""Seconds a side waits for the other before the test fails (it never should)."""

NETWORK_THREAD = "kafka-network-thread-stand-in"


class _Unacknowledged(dict[int, Message]):
    """``unacknowledged`` that runs ``between`` once, right after the first call of its method
    named ``look`` (``copy`` or ``get``), before that call returns."""

    def __init__(self, held: dict[int, Message], look: str, between: Callable[[], None]) -> None:
        super().__init__(held)
        self._look = look
        self._between: Callable[[], None] | None = between

    def copy(self) -> dict[int, Message]:  # give_up() takes what it gives up on with this
        taken = super().copy()
        self._after("copy")
        return taken

    def get(self, number: int, default: Message | None = None) -> Message | None:  # type: ignore[override]
        found = super().get(number, default)  # claim() looks for its record with this
        self._after("get")
        return found

    def _after(self, look: str) -> None:
        if look == self._look and self._between is not None:
            between, self._between = self._between, None
            between()


class _Made:
    """The reports made, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reports: list[DeliveryReport] = []

    def __call__(self, report: DeliveryReport) -> None:
        with self._lock:
            self.reports.append(report)

    def statuses(self, *messages: Message) -> list[list[DeliveryStatus]]:
        """The statuses each of ``messages`` was reported with; no other message was reported."""
        with self._lock:
            made = list(self.reports)
        assert all(any(r.message is m for m in messages) for r in made), made
        return [[r.status for r in made if r.message is m] for m in messages]


def _acknowledgements(count: int) -> tuple[Acknowledgements, _Made, list[int], list[Message]]:
    made = _Made()
    acks = Acknowledgements(Reports("kafka", made))
    messages = events(count)
    numbers = [acks.next_number() for _ in messages]
    acks.unacknowledged.update(zip(numbers, messages, strict=True))
    return acks, made, numbers, messages


def _on_a_network_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, name=NETWORK_THREAD, daemon=True)
    thread.start()
    return thread


def test_a_record_claimed_after_close_took_its_copy_is_reported_accepted_only() -> None:
    # give_up() copied what it gives up on; before it pops them, the acknowledgement of the
    # first is claimed and reported on the network thread: close() leaves that one to it.
    acks, made, (claimed, _), (first, second) = _acknowledgements(2)

    def acknowledge_first() -> None:
        network = _on_a_network_thread(lambda: acks.acknowledged(claimed))
        network.join(WAIT)
        assert not network.is_alive()

    acks.unacknowledged = _Unacknowledged(acks.unacknowledged, "copy", acknowledge_first)

    left = acks.give_up("within the test's close()")

    assert left == [second]
    assert made.statuses(first, second) == [[ACCEPTED], [FAILED]]
    assert acks.still_held() == []


def test_a_record_claimed_after_close_took_its_copy_is_not_returned_while_reported() -> None:
    # As above, but close() gives up while the ACCEPTED report is still being made: close()
    # neither reports nor returns it, and flush() holds it until that report is made.
    made = _Made()
    reporting = threading.Event()
    go_on = threading.Event()

    def slow_on_the_network_thread(report: DeliveryReport) -> None:
        if threading.current_thread().name == NETWORK_THREAD:
            reporting.set()
            go_on.wait(WAIT)
        made(report)

    acks = Acknowledgements(Reports("kafka", slow_on_the_network_thread))
    (message,) = events(1)
    number = acks.next_number()
    network: list[threading.Thread] = []

    def acknowledge() -> None:
        network.append(_on_a_network_thread(lambda: acks.acknowledged(number)))
        assert reporting.wait(WAIT)  # claimed: its report has begun

    acks.unacknowledged = _Unacknowledged({number: message}, "copy", acknowledge)
    try:
        assert acks.give_up("within the test's close()") == []
        assert acks.still_held() == [message]
    finally:
        go_on.set()
        network[0].join(WAIT)

    assert not network[0].is_alive()
    assert made.statuses(message) == [[ACCEPTED]]
    assert acks.still_held() == []


def test_an_acknowledgement_for_a_record_close_took_meanwhile_is_not_reported() -> None:
    # The acknowledgement found its record; before it pops it, close() gives up on every
    # record and reports each FAILED: the acknowledgement leaves that record to close().
    acks, made, (number, _), (message, second) = _acknowledgements(2)
    found = threading.Event()
    closed = threading.Event()

    def let_close_run() -> None:  # on the network thread, inside claim()
        found.set()
        assert closed.wait(WAIT)

    acks.unacknowledged = _Unacknowledged(acks.unacknowledged, "get", let_close_run)
    network = _on_a_network_thread(lambda: acks.acknowledged(number))
    assert found.wait(WAIT)

    try:
        left = acks.give_up("within the test's close()")
    finally:
        closed.set()
        network.join(WAIT)

    assert not network.is_alive()
    assert left == [message, second]
    assert made.statuses(message, second) == [[FAILED], [FAILED]]
    assert acks.still_held() == []


def test_a_failure_for_a_record_close_took_meanwhile_is_not_reported() -> None:
    # As above with the producer's error for the record: one FAILED report, close()'s.
    acks, made, (number,), (message,) = _acknowledgements(1)
    found = threading.Event()
    closed = threading.Event()

    def let_close_run() -> None:
        found.set()
        assert closed.wait(WAIT)

    acks.unacknowledged = _Unacknowledged(acks.unacknowledged, "get", let_close_run)
    network = _on_a_network_thread(lambda: acks.failed(number, TimeoutError("expired")))
    assert found.wait(WAIT)

    try:
        left = acks.give_up("within the test's close()")
    finally:
        closed.set()
        network.join(WAIT)

    assert not network.is_alive()
    assert left == [message]
    assert made.statuses(message) == [[FAILED]]
    (report,) = made.reports
    assert report.reason is not None
    assert report.reason.startswith("not acknowledged by Kafka")  # close()'s, not the error's
    assert acks.still_held() == []
