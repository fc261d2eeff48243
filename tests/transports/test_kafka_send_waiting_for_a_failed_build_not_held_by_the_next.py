"""A send waiting for the build of a replacement producer fails when that build fails, also when
the watchdog's next try (a second later) takes the lock of replacements before the send does.

A lock goes to whichever thread asks when it is released: on a loaded machine the watchdog's
next try often came first, and the sends waiting (six tracking threads in
test_kafka_replacement_bounds) waited for that build too, twice ``max_block_ms``. Here the next
try is made certain to come first: it runs on the thread that held the lock for the first."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from types import SimpleNamespace
from typing import Any

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import TransportError
from mixpanel_core.testing import memory_client
from transports.kafka.acknowledgements import Acknowledgements
from transports.kafka.replacement import ProducerReplacement
from transports.kafka.reports import Reports

from .test_kafka_broken_producer import wait_for


def in_function(thread: threading.Thread, name: str) -> bool:
    """Whether ``thread`` is running the function ``name`` (anywhere on its stack) now."""
    assert thread.ident is not None
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == name:
            return True
        frame = frame.f_back
    return False


class TwoFailedBuilds:
    """The builds of two tries, each failing (no broker): the first once ``first_may_fail`` is
    set, the second once ``send_ended`` is (or after 10 s)."""

    def __init__(self) -> None:
        self.first_began = threading.Event()
        self.first_may_fail = threading.Event()
        self.second_began = threading.Event()
        self.send_ended = threading.Event()
        self._tries = iter(["first", "second"])

    def __call__(self) -> Any:
        attempt = next(self._tries)
        if attempt == "first":
            self.first_began.set()
            self.first_may_fail.wait(30)
        else:
            self.second_began.set()
            self.send_ended.wait(10)  # before the fix, the send waited for this build to end
        raise TransportError(f"cannot reach Kafka ({attempt} try)")


def a_broken_transport() -> Any:
    """What ``ProducerReplacement`` reads of a transport whose producer is broken."""
    return SimpleNamespace(
        _broken="is broken (for this test)",
        _closed=False,
        _pid=os.getpid(),
        _producer=SimpleNamespace(_closed=True),  # retired already: nothing held to report
    )


def test_a_send_waiting_for_a_failed_build_is_not_held_for_the_next_one() -> None:
    builds = TwoFailedBuilds()
    reports: list[DeliveryReport] = []
    replacement = ProducerReplacement(
        builds, Acknowledgements(Reports("kafka", reports.append)), Reports("kafka", reports.append)
    )
    transport = a_broken_transport()

    def watchdog_tries() -> None:
        with replacement._replacing:  # held from the first try to the next, as when it wins
            for _ in range(2):
                with contextlib.suppress(TransportError):
                    replacement.replace(transport)

    client, memory = memory_client("tok")
    client.track("u", "Played")
    message = memory.messages[0]
    refused: list[str] = []

    def send() -> None:
        try:
            replacement.before_send(transport, message)
        except TransportError as exc:
            refused.append(str(exc))
        finally:
            builds.send_ended.set()

    watchdog = threading.Thread(target=watchdog_tries)
    watchdog.start()
    sender = threading.Thread(target=send)
    try:
        assert builds.first_began.wait(10)
        sender.start()
        # Waiting for the first build, inside replace() (for the lock of replacements).
        assert wait_for(lambda: in_function(sender, "replace"), 10)
        builds.first_may_fail.set()
        # Refused while the next try still builds, not once it ended too.
        assert builds.send_ended.wait(5), "the send waited for the watchdog's next build too"
        assert builds.second_began.wait(10)
    finally:
        builds.first_may_fail.set()
        builds.send_ended.set()
        sender.join(30)
        watchdog.join(30)
    assert len(refused) == 1
    assert "no new one could be built yet: cannot reach Kafka (first try)" in refused[0]
    assert [(r.status, r.message) for r in reports] == [(DeliveryStatus.FAILED, message)]
