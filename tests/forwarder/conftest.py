"""A forwarding rig: a topic on the session's broker, an emulator, a config file, and helpers to
produce records and run forwarders as subprocesses (so they can be killed for real)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core.client import Mixpanel
from mixpanel_core.emulator import Emulator
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.fixtures import read_records
from mixpanel_core.messages import ImportEvent
from transports.kafka import KafkaTransport

FAST_GROUP = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 1000}
"""Small timeouts through configuration, as KAFKA.md advises: a new member joins after about
half the session timeout on the embedded broker (2 s here, 3.3 s with 6 s), and every
forwarder a test starts pays it; a killed member is noticed after 3 s."""
FAST_RETRIES = {
    "backoff_base": 0.05,
    "backoff_cap": 0.2,
    "rate_limit_base": 0.05,
    "rate_limit_cap": 0.2,
}


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _table(name: str, values: dict[str, Any]) -> str:
    return f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items())


class ForwardingRig:
    """One test's topic, dead-letter topic, group and emulator, and ways to drive them."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        dead_letter_topic: str,
        emulator: Emulator,
        directory: Path,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic
        self.emulator = emulator
        self.directory = directory
        self.group = f"group-{uuid.uuid4().hex[:8]}"
        self.processes: list[subprocess.Popen[str]] = []

    def write_config(
        self,
        forwarder: dict[str, Any] | None = None,
        mixpanel: dict[str, Any] | None = None,
        plugins: list[str] | None = None,
        http: dict[str, Any] | None = None,
    ) -> Path:
        """The rig's TOML; ``plugins`` replaces ``[plugins] enabled`` (default: the default),
        ``http`` adds options to the forwarder's HTTP transport."""
        mixpanel_table = {
            "token": "emulator-token",
            "api_host": self.emulator.base_url,
            "service_account_username": "sa-user",
            "service_account_secret": "sa-secret",
            "project_id": "12345",
            **(mixpanel or {}),
        }
        forwarder_table = {
            "source": "bus",
            "transport": "direct",
            "group_id": self.group,
            "dead_letter_topic": self.dead_letter_topic,
            "consumer": FAST_GROUP,
            "linger": 0.2,
            "shutdown_deadline": 10.0,
            **(forwarder or {}),
        }
        text = "\n".join(
            [
                _table("mixpanel", mixpanel_table),
                _table(
                    "transports.bus",
                    {"type": "kafka", "bootstrap_servers": self.bootstrap, "topic": self.topic},
                ),
                _table("transports.direct", {"type": "http", **FAST_RETRIES, **(http or {})}),
                _table("forwarder", forwarder_table),
                *([] if plugins is None else [_table("plugins", {"enabled": plugins})]),
            ]
        )
        path = self.directory / f"forwarder-{uuid.uuid4().hex[:6]}.toml"
        path.write_text(text)
        return path

    def stop_config(self, http: dict[str, Any] | None = None, **forwarder: Any) -> Path:
        """A config with ``on_poison = "stop"`` and no dead-letter topic; by default a linger
        far longer than a run, so the records before a poison are still buffered when it is
        read, however the broker splits them over fetches."""
        config = self.write_config(
            {"on_poison": "stop", "dead_letter_topic": None, "linger": 60.0, **forwarder},
            http=http,
        )
        config.write_text(config.read_text().replace("dead_letter_topic = null\n", ""))
        return config

    # -- producing --------------------------------------------------------------------------

    def client(self) -> Mixpanel:
        """A client whose messages go to the rig's topic through the kafka transport."""
        return Mixpanel("emulator-token", KafkaTransport(self.bootstrap, self.topic))

    def produce_events(self, count: int, prefix: str = "user") -> list[str]:
        """``count`` /track events; returns their ``$insert_id``s."""
        client = self.client()
        ids = []
        for i in range(count):
            insert_id = uuid.uuid4().hex
            client.track(f"{prefix}-{i % 50}", "Played", {"i": i, "$insert_id": insert_id})
            ids.append(insert_id)
        assert client.close(30) == []
        return ids

    def produce_rejected_import(self) -> None:
        """One /import event Mixpanel rejects (a placeholder distinct_id).

        The client's own checks would refuse it: they are bypassed, as an older or foreign
        producer might; with no validation plugin in the forwarder, Mixpanel is the one to
        reject it.
        """
        transport = KafkaTransport(self.bootstrap, self.topic)
        transport.send(
            ImportEvent.from_record(
                {
                    "event": "Old purchase",
                    "properties": {
                        "token": "emulator-token",
                        "distinct_id": "anonymous",
                        "time": 1_700_000_000,
                        "$insert_id": "rej-1",
                    },
                }
            )
        )
        assert transport.close(10) == []

    def produce_raw(self, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        """A record written by something other than the kafka transport."""
        self.produce_raws([value], headers)

    def produce_raws(self, values: list[bytes | None], headers: list[tuple[str, bytes]]) -> None:
        """Records written by something other than the kafka transport, in order."""
        producer = kafka_python().KafkaProducer(bootstrap_servers=self.bootstrap)
        for value in values:
            producer.send(self.topic, value=value, key=b"raw", headers=headers).get(30)
        producer.close(10)

    # -- forwarding -------------------------------------------------------------------------

    def start(self, config: Path, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "mixpanel_core.cli", "forward", "--config", str(config), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.processes.append(process)
        return process

    def start_logged(self, config: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
        """``start``, with stderr written to a file the test can read while it runs."""
        log = self.directory / f"forwarder-{uuid.uuid4().hex[:6]}.log"
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mixpanel_core.cli",
                    "forward",
                    "--config",
                    str(config),
                    *args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.processes.append(process)
        return process, log

    def run_until_committed(self, config: Path, offsets: dict[int, int | None]) -> str:
        """Start a forwarder, wait until the group committed ``offsets``, stop it with SIGTERM
        and return its stderr; fails the test if it exits before (it stopped on a record) or
        does not exit 0."""
        process = self.start(config)
        wait_until(lambda: process.poll() is not None or self.committed() == offsets, 60)
        if process.poll() is not None:
            last_line = process.communicate()[1].strip().splitlines()[-1]
            pytest.fail(f"the forwarder stopped (exit {process.returncode}): {last_line}")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        return stderr

    def run_until_caught_up(self, config: Path, timeout: float = 90.0) -> tuple[int, str]:
        process = self.start(config, "--until-caught-up")
        _, stderr = process.communicate(timeout=timeout)
        return process.returncode, stderr

    def wait_for_delivered(self, count: int, timeout: float = 60.0) -> None:
        self.emulator.client.wait_for_records(count, timeout=timeout)

    # -- inspecting -------------------------------------------------------------------------

    def metric(self, port: int, name: str) -> float | None:
        """One metric of the forwarder serving metrics on ``port``, the sum of its series
        (``name{partition="0"}``, ...); None until it serves, or serves none of it."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
        except OSError:  # not listening yet
            return None
        values = [
            float(value)
            for metric, _, value in (line.rpartition(" ") for line in text.splitlines())
            if metric == name or metric.startswith(f"{name}{{")
        ]
        return sum(values) if values else None

    def rate_limited_rounds(self, config: Path, window: float) -> tuple[int, list[float], str]:
        """Run the forwarder while the emulator answers 429: the requests answered in
        ``window`` seconds after the first, the waits between rounds it logged, its stderr
        (stopped by SIGTERM, which must end it with 0)."""

        def answered() -> int:
            requests = self.emulator.client.stats()["requests"].get("track", {})
            return int(requests.get("429", 0))

        process = self.start(config)
        wait_until(lambda: answered() >= 1, 60)
        first = answered()
        time.sleep(window)
        in_window = answered() - first
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        waits = re.findall(r"not delivered .*; trying again in ([\d.]+)s", stderr)
        return in_window, [float(wait) for wait in waits], stderr

    def lag(self, port: int) -> float | None:
        """The sum of the partition lag gauges; None before the forwarder serves any."""
        return self.metric(port, "mixpanel_forwarder_partition_lag")

    def wait_for_consumed(self, port: int, count: int, timeout: float = 60.0) -> None:
        """Until the forwarder serving metrics on ``port`` has read ``count`` records."""
        name = "mixpanel_forwarder_records_consumed_total"
        wait_until(lambda: (self.metric(port, name) or 0) >= count, timeout)

    def delivered_insert_ids(self, endpoint: str = "track") -> list[str]:
        return self.emulator.client.insert_ids(endpoint)

    def dead_letters(self, count: int) -> list[Any]:
        return read_records(self.bootstrap, self.dead_letter_topic, count)

    def committed(self) -> dict[int, int | None]:
        kafka = kafka_python()
        reader = kafka.KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group, enable_auto_commit=False
        )
        try:
            numbers = reader.partitions_for_topic(self.topic) or set()
            return {n: reader.committed(kafka.TopicPartition(self.topic, n)) for n in numbers}
        finally:
            reader.close(autocommit=False)

    def commit(self, offset: int, partition: int = 0) -> None:
        """What an operator does to skip records: commit ``offset`` for the rig's group."""
        kafka = kafka_python()
        consumer = kafka.KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group, enable_auto_commit=False
        )
        try:
            topic_partition = kafka.TopicPartition(self.topic, partition)
            consumer.assign([topic_partition])
            consumer.commit({topic_partition: kafka.structs.OffsetAndMetadata(offset, "", -1)})
        finally:
            consumer.close(autocommit=False)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            if process.stderr is not None:
                process.stderr.close()


@pytest.fixture
def rig_partitions() -> int | None:
    """Partitions of the rig's topic; None: the broker's usual. A module overrides it."""
    return None


@pytest.fixture
def rig(
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    mixpanel_emulator: Emulator,
    tmp_path: Path,
    rig_partitions: int | None,
) -> Iterator[ForwardingRig]:
    topic = (
        kafka_topic_factory()
        if rig_partitions is None
        else kafka_topic_factory(partitions=rig_partitions)
    )
    built = ForwardingRig(
        kafka_bootstrap,
        topic,
        kafka_topic_factory(partitions=1, prefix="dead-letters"),
        mixpanel_emulator,
        tmp_path,
    )
    yield built
    built.stop_all()


def free_port() -> int:
    """A loopback port nothing listens on now, for a forwarder's metrics_port.

    (Another process could take it before the forwarder binds it; the forwarder would then
    exit with the error, failing the test loudly rather than wrongly.)
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``condition`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.05)


def track_event(i: int, refused: int) -> bytes:
    """The raw record of /track event ``id-i``; the one at ``refused`` carries a token that is
    not the project's, which only Mixpanel (the emulator) refuses, at delivery."""
    token = "not-the-project-token" if i == refused else "emulator-token"
    properties = {"token": token, "distinct_id": "u1", "time": int(time.time()) - 10}
    return json.dumps(
        {"event": "E", "properties": {**properties, "$insert_id": f"id-{i}"}}
    ).encode()


def error_line(stderr: str) -> str:
    """The one ``mixpanel-core: error`` line of a forwarder's stderr."""
    [error] = [line for line in stderr.splitlines() if line.startswith("mixpanel-core: error")]
    return error
