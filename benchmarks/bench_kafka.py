"""The Kafka path against bare kafka-python: same broker, same records, same run.

    .venv/bin/python benchmarks/bench_kafka.py [--records 200000] [--rounds 4]
        [--memory-records 1000000]

1. Produce: the ``kafka`` transport vs a bare ``KafkaProducer`` sending the same keys and values
   (target: at least 70% of the bare rate). The records are sent in ``--rounds`` rounds, each
   side once per round, the side that goes first alternating; the median of the rounds'
   ratios is reported (one round swings by 15 points with the machine's load).
2. Forward: the forwarder delivering the topic to the emulator (in its own process) vs a bare
   ``KafkaConsumer`` only reading it; both from a new group's join to the last record
   (target: at least 60%).
3. Memory: ``mixpanel-core forward --until-caught-up`` over ``--memory-records`` records, as a
   child process; its peak RSS (target: under 200 MB). ``--memory-records 0`` skips it.

The broker is ``$MIXPANEL_CORE_KAFKA_BOOTSTRAP`` when set, else the embedded one.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.forwarder import build_forwarder
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import bootstrap_servers_or_embedded
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.messages import Message
from mixpanel_core.testing import memory_client
from mixpanel_core.wire import dumps
from transports.kafka import KafkaTransport

TOKEN = "emulator-token"
PARTITIONS = 3
GROUP_OPTIONS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 2000}
MIB = 1024 * 1024


def messages(count: int) -> list[Message]:
    """``count`` realistic /track messages, built once so neither producer pays for them."""
    client, memory = memory_client(TOKEN)
    for i in range(count):
        client.track(f"user-{i % 5000}", "Played song", {"song": i % 977, "plan": "pro"})
    return memory.messages


def produce_bare(bootstrap: str, topic: str, batch: list[Message]) -> float:
    kafka = kafka_python()
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    gc.collect()
    started = time.perf_counter()
    # The same serialization work the transport does: only the transport's own cost differs.
    for message in batch:
        producer.send(topic, key=message.key.encode(), value=dumps(message.record))
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return len(batch) / elapsed


def produce_core(bootstrap: str, topic: str, batch: list[Message]) -> float:
    transport = KafkaTransport(bootstrap, topic)
    # The transport sends the JSON validation already made (``message.json()``), made once per
    # message. Copies without it, so the transport encodes each record as the bare loop does.
    batch = [type(message)(message.record, message.auth) for message in batch]
    gc.collect()
    started = time.perf_counter()
    for message in batch:
        transport.send(message)
    left = transport.flush(600)
    elapsed = time.perf_counter() - started
    transport.close()
    assert not left, f"{len(left)} records were not acknowledged"
    return len(batch) / elapsed


def consume_bare(bootstrap: str, topic: str, count: int) -> float:
    kafka = kafka_python()
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **GROUP_OPTIONS,
    )
    started = time.perf_counter()
    consumer.subscribe([topic])
    seen = 0
    while seen < count:
        for records in consumer.poll(timeout_ms=100).values():
            seen += len(records)
    elapsed = time.perf_counter() - started
    consumer.close(autocommit=False)
    return count / elapsed


def forwarder_config(bootstrap: str, topic: str, base_url: str) -> dict[str, Any]:
    return {
        "mixpanel": {"token": TOKEN, "api_host": base_url},
        "transports": {"bus": {"type": "kafka", "bootstrap_servers": bootstrap, "topic": topic}},
        "forwarder": {
            "source": "bus",
            "group_id": f"forwarder-{uuid.uuid4().hex[:8]}",
            "on_poison": "stop",
            "consumer": GROUP_OPTIONS,
            "log_interval": 0,
        },
    }


def forward(bootstrap: str, topic: str, count: int, emulator: EmulatorProcess) -> float:
    config = config_from_mapping(forwarder_config(bootstrap, topic, emulator.base_url))
    forwarder, client = build_forwarder(config, until_caught_up=True)
    before = emulator.client.stats()["accepted"]["track"]
    gc.collect()
    started = time.perf_counter()
    forwarder.run(until_caught_up=True)
    elapsed = time.perf_counter() - started
    client.close()
    delivered = emulator.client.stats()["accepted"]["track"] - before
    assert delivered >= count, f"only {delivered} of {count} records reached the emulator"
    return count / elapsed


def forward_in_child(bootstrap: str, topic: str, emulator: EmulatorProcess) -> int:
    """Peak RSS (bytes) of ``mixpanel-core forward --until-caught-up`` over ``topic``."""
    table = forwarder_config(bootstrap, topic, emulator.base_url)
    lines = [
        "[mixpanel]",
        f'token = "{TOKEN}"',
        f'api_host = "{emulator.base_url}"',
        "[transports.bus]",
        'type = "kafka"',
        f'bootstrap_servers = "{bootstrap}"',
        f'topic = "{topic}"',
        "[forwarder]",
        'source = "bus"',
        f'group_id = "{table["forwarder"]["group_id"]}"',
        'on_poison = "stop"',
        "log_interval = 0",
        "consumer = { session_timeout_ms = 6000, heartbeat_interval_ms = 2000 }",
    ]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "forwarder.toml"
        path.write_text("\n".join(lines) + "\n")
        command = [sys.executable, "-m", "mixpanel_core.cli", "forward", "--config", str(path)]
        child = subprocess.Popen(
            [*command, "--until-caught-up", "--log-level", "WARNING"],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        peak = 0
        # VmHWM is the child's own peak since exec. getrusage(RUSAGE_CHILDREN) would also count
        # the pages it shared with this (large) process between fork and exec.
        while child.poll() is None:
            peak = max(peak, _peak_rss(child.pid))
            time.sleep(0.2)
        if child.returncode != 0:
            raise SystemExit(f"the forwarder exited with {child.returncode}")
    return peak


def _peak_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass  # the child exited between poll() and open()
    return 0


def fill_topic(bootstrap: str, topic: str, count: int) -> None:
    """``count`` records as the transport writes them, produced in chunks to bound memory."""
    transport = KafkaTransport(bootstrap, topic, {"linger_ms": 5})
    chunk = 50_000
    for start in range(0, count, chunk):
        for message in messages(min(chunk, count - start)):
            transport.send(message)
        transport.flush(600)
    assert transport.close(600) == []


def _parts(batch: list[Message], count: int) -> list[list[Message]]:
    """``batch`` cut into ``count`` consecutive parts of (nearly) equal size."""
    size = -(-len(batch) // max(1, count))
    return [batch[start : start + size] for start in range(0, len(batch), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=4, help="rounds of the produce comparison")
    parser.add_argument("--memory-records", type=int, default=1_000_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    batch = messages(args.records)

    with (
        bootstrap_servers_or_embedded() as bootstrap,
        EmulatorProcess(keep_records=False) as emulator,
    ):
        bare_topic, core_topic = f"bare-{uuid.uuid4().hex[:6]}", f"core-{uuid.uuid4().hex[:6]}"
        for topic in (bare_topic, core_topic):
            create_topic(bootstrap, topic, PARTITIONS)

        # Each side's topic holds all its rounds' records: the forward comparison reads
        # --records records from the transport's topic.
        rounds = []
        for number, part in enumerate(_parts(batch, args.rounds)):
            sides = [(produce_bare, bare_topic), (produce_core, core_topic)]
            rates = {
                produce: produce(bootstrap, topic, part)
                for produce, topic in (sides if number % 2 == 0 else sides[::-1])
            }
            rounds.append((rates[produce_bare], rates[produce_core]))
        del batch
        rounds.sort(key=lambda pair: pair[1] / pair[0])
        ratios = [core / bare for bare, core in rounds]
        bare_produce, core_produce = rounds[len(rounds) // 2]
        print(f"produce  bare kafka-python: {bare_produce:10,.0f} records/s (the median round)")
        print(f"produce  kafka transport:   {core_produce:10,.0f} records/s")
        print(
            f"produce  ratio: {statistics.median(ratios):.0%} (target >= 70%); rounds: "
            + ", ".join(f"{ratio:.0%}" for ratio in ratios)
        )

        bare_read = consume_bare(bootstrap, core_topic, args.records)
        forwarded = forward(bootstrap, core_topic, args.records, emulator)
        print(f"consume  bare kafka-python: {bare_read:10,.0f} records/s (read only)")
        print(f"forward  to the emulator:   {forwarded:10,.0f} records/s (delivered)")
        print(f"forward  ratio: {forwarded / bare_read:.0%} (target >= 60%)")

        if args.memory_records:
            big_topic = f"big-{uuid.uuid4().hex[:6]}"
            create_topic(bootstrap, big_topic, PARTITIONS)
            fill_topic(bootstrap, big_topic, args.memory_records)
            peak = forward_in_child(bootstrap, big_topic, emulator)
            print(
                f"memory   forwarding {args.memory_records:,} records: peak RSS "
                f"{peak / MIB:.0f} MB (target < 200 MB)"
            )


if __name__ == "__main__":
    main()
