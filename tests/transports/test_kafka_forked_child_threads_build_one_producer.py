"""Review R70 F2: in a ``fork()`` child, threads whose first sends come at once build one
producer between them, and ``flush()`` and ``close()`` reach it. Built with no lock, each
thread that came before the first build ended built its own; only the last stayed the
transport's, and the others were never hurried by ``flush()`` (what lingered in them waited
out its timeout) nor closed (their threads and connections lived on in every worker of a
pre-fork server). Against the real broker."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from transports.kafka import KafkaTransport

from .kafka_cases import events
from .test_kafka_broken_producer import wait_for

pytestmark = pytest.mark.integration

THREADS = 8
PER_THREAD = 25
LINGER_MS = 60_000
"""Far beyond the flush below: only a flush that hurries every producer gets its records out."""


def _child(transport: KafkaTransport, reports: list[DeliveryReport]) -> dict[str, Any]:
    built: list[Any] = []
    build = transport._replacement.build

    def counted() -> Any:
        producer = build()
        built.append(producer)
        return producer

    transport._replacement.build = counted
    reports.clear()  # the parent's, copied by the fork
    messages = events(THREADS * PER_THREAD, tag="child")
    together = threading.Barrier(THREADS)
    failures: list[str] = []

    def sender(k: int) -> None:
        together.wait()
        try:
            for message in messages[k * PER_THREAD : (k + 1) * PER_THREAD]:
                transport.send(message)
        except Exception as exc:
            failures.append(repr(exc))

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flush_left = len(transport.flush(10))
    close_left = len(transport.close(10))
    # close() stops each producer's network thread; awaited, not assumed.
    stopped = wait_for(lambda: not any(p._sender.is_alive() for p in built), 10)
    return {
        "failures": failures,
        "built": len(built),
        "still_open": sum(1 for p in built if not p._closed),
        "threads_stopped": stopped,
        "flush_left": flush_left,
        "close_left": close_left,
        "accepted": sum(1 for r in reports if r.status is DeliveryStatus.ACCEPTED),
        "reports": len(reports),
    }


def test_threads_of_a_forked_child_sending_at_once_build_one_producer(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    reports: list[DeliveryReport] = []
    transport = KafkaTransport(
        kafka_bootstrap, kafka_topic, {"linger_ms": LINGER_MS}, report=reports.append
    )
    try:
        transport.send(events(1, tag="parent")[0])
        assert transport.flush(30) == []
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read)
                os.write(write, json.dumps(_child(transport, reports)).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            said = pipe.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        sent = THREADS * PER_THREAD
        assert json.loads(said) == {
            "failures": [],
            "built": 1,  # one per thread that came before the first build ended, unlocked
            "still_open": 0,
            "threads_stopped": True,
            "flush_left": 0,  # the other producers' records lingered through the flush
            "close_left": 0,
            "accepted": sent,
            "reports": sent,
        }
    finally:
        transport.close(10)
