"""A process that exits without ``close()`` still delivers a ``multiprocessing_queue``'s last
batch through its ``fallback`` when its sender is dead, also when a route built and used that
fallback before exit; so does a ``fork`` worker, which ends through ``multiprocessing``'s
finalizers rather than ``atexit``.

The exit closes ran the last registered first, so a fallback that registered its own exit
close after the transport feeding it (built by a route, before exit) was closed first: the
feeder's exit close then handed its last batch to a closed fallback, and every message of it
was reported FAILED, not delivered. ``client.close()`` closes a feeder before what it feeds;
the exit closes now keep that order too.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from mp_workers import TOKEN

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.kafka.broker import EmbeddedBroker

from ..subprocesses import run_python

pytestmark = pytest.mark.integration

EVENTS = 5

CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from mixpanel_core import Mixpanel, hookimpl
    from mixpanel_core.config import config_from_mapping
    from mixpanel_core.pipeline import Pipeline

    class Printer:
        @hookimpl
        def mixpanel_delivered(self, report):
            i = report.message.properties.get("i") if report.message is not None else None
            print("report", f"{report.status.value}@{report.transport}", i, flush=True)

    def main():
        base_url, fallback = sys.argv[1], json.loads(sys.argv[2])
        config = config_from_mapping({
            "mixpanel": {"token": "%(token)s", "api_host": base_url},
            "transports": {
                "default": {"type": "multiprocessing_queue", "inner": "direct",
                            "fallback": "fb", "linger": 60.0},
                "direct": {"type": "buffered_http", "linger": 0.02},
                "fb": fallback,
            },
            "routes": [{"transport": "fb", "kinds": ["people"]}, {"transport": "default"}],
        })
        pipeline = Pipeline.from_config(config, extra_plugins=[("printer", Printer())])
        client = Mixpanel("%(token)s", config=config, pipeline=pipeline)
        client.track("u-0", "Before")
        assert client.flush(timeout=20) == []
        process = client.pipeline.transport("default").supervisor.process
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
        client.people_set("u-9", {"plan": "pro"})  # builds and uses "fb", after "default"
        for i in range(%(events)d):
            client.track("u-1", "After", {"i": i})  # waiting in the producer's batch
        print("built", list(client.pipeline._transports.built), flush=True)
        # Returns without close(): the client is freed here, the process then exits.

    if __name__ == "__main__":
        main()
    """
) % {"token": TOKEN, "events": EVENTS}


def exit_without_close(base_url: str, fallback: dict[str, Any]) -> list[str]:
    """Run the child; returns its ``status@transport i`` report lines for the events ``i``."""
    done = run_python(CHILD, base_url, json.dumps(fallback))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "built ['default', 'fb']" in done.stdout, done.stdout + done.stderr
    return sorted(
        line.removeprefix("report ")
        for line in done.stdout.splitlines()
        if line.startswith("report ") and not line.endswith(" None")
    )


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as started:
        yield started


def test_a_buffered_http_fallback_built_before_exit_delivers_the_last_batch(
    emulator: EmulatorProcess,
) -> None:
    reports = exit_without_close(emulator.base_url, {"type": "buffered_http", "linger": 60.0})

    assert reports == [f"accepted@fb {i}" for i in range(EVENTS)]
    events = [record["event"] for record in emulator.records("track")]
    assert sorted(events) == ["After"] * EVENTS + ["Before"]
    assert len(emulator.records("engage")) == 1


def test_a_kafka_fallback_built_before_exit_delivers_the_last_batch(
    emulator: EmulatorProcess, broker: EmbeddedBroker
) -> None:
    kafka = {"type": "kafka", "bootstrap_servers": broker.bootstrap_servers, "topic": "mixpanel"}

    reports = exit_without_close(emulator.base_url, kafka)

    assert reports == [f"accepted@fb {i}" for i in range(EVENTS)]


WORKER = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys
    from mixpanel_core import Mixpanel
    from mixpanel_core.config import config_from_mapping

    def work(client):
        for i in range(%(events)d):
            client.track("u-1", "After", {"i": i})  # waiting in the worker's producer
        client.people_set("u-9", {"plan": "pro"})  # then builds and uses "fb" here
        # Returns: multiprocessing ends the worker with os._exit, running its finalizers.

    def main():
        config = config_from_mapping({
            "mixpanel": {"token": "%(token)s", "api_host": sys.argv[1]},
            "transports": {
                "default": {"type": "multiprocessing_queue", "inner": "direct",
                            "fallback": "fb", "linger": 60.0},
                "direct": {"type": "buffered_http", "linger": 0.02},
                "fb": {"type": "buffered_http", "linger": 60.0},
            },
            "routes": [{"transport": "fb", "kinds": ["people"]}, {"transport": "default"}],
        })
        client = Mixpanel("%(token)s", config=config)
        client.track("u-0", "Before")
        assert client.flush(timeout=20) == []
        process = client.pipeline.transport("default").supervisor.process
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
        worker = multiprocessing.get_context("fork").Process(target=work, args=(client,))
        worker.start()
        worker.join(60)
        print("worker exit", worker.exitcode, flush=True)
        client.close(timeout=20)

    if __name__ == "__main__":
        main()
    """
) % {"token": TOKEN, "events": EVENTS}


def test_a_fork_worker_s_last_batch_reaches_the_fallback_it_built_before_exit(
    emulator: EmulatorProcess,
) -> None:
    done = run_python(WORKER, emulator.base_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "worker exit 0" in done.stdout, done.stdout + done.stderr
    events = [record["event"] for record in emulator.records("track")]
    assert sorted(events) == ["After"] * EVENTS + ["Before"], done.stderr
