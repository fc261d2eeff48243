"""Produce to Kafka, forward to Mixpanel: the whole path, end to end, on this machine.

    python examples/kafka_pipeline.py [--events 2000]

Starts the Mixpanel emulator and a Kafka-compatible broker (or uses the cluster named by
$MIXPANEL_CORE_KAFKA_BOOTSTRAP), tracks events through the ``kafka`` transport, slips one
record that is not JSON onto the topic, runs ``mixpanel-core forward --until-caught-up``, and
prints what was produced, delivered and dead-lettered.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from mixpanel_core import Mixpanel
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.kafka.broker import bootstrap_servers_or_embedded
from mixpanel_core.kafka.headers import ENDPOINT, SCHEMA, SCHEMA_VERSION

CONFIG = Path(__file__).resolve().parent / "kafka_pipeline.toml"
TOPIC, DEAD_LETTER_TOPIC = "mixpanel-demo", "mixpanel-demo-dead-letter"


def produce(events: int) -> int:
    """The application's side: track and profile calls through the kafka transport."""
    with Mixpanel.from_config(CONFIG) as mp:
        for i in range(events):
            mp.track(f"user-{i % 50}", "Page viewed", {"page": f"/item/{i}"})
        mp.people_set("user-1", {"plan": "pro"})
        mp.group_set("company", "acme", {"seats": 12})
    return events + 2


def slip_in_poison(bootstrap: str) -> None:
    """A record no forwarder can deliver: it must be dead-lettered, not block the partition."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    headers = [(ENDPOINT, b"track"), (SCHEMA, SCHEMA_VERSION.encode())]
    producer.send(TOPIC, key=b"user-x", value=b"{not json", headers=headers)
    producer.flush(10)
    producer.close()


def count_dead_letters(bootstrap: str) -> int:
    consumer = KafkaConsumer(
        DEAD_LETTER_TOPIC,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        return sum(1 for _ in consumer)
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    with EmulatorProcess() as emulator, bootstrap_servers_or_embedded() as bootstrap:
        os.environ["KAFKA_DEMO_API_HOST"] = emulator.base_url
        os.environ["KAFKA_DEMO_BOOTSTRAP"] = bootstrap
        produced = produce(args.events)
        slip_in_poison(bootstrap)
        print(f"produced {produced} messages (+1 poison record) to {TOPIC!r} at {bootstrap}")
        forward = [sys.executable, "-m", "mixpanel_core.cli", "forward", "--config", str(CONFIG)]
        subprocess.run([*forward, "--until-caught-up", "--log-level", "WARNING"], check=True)
        stats = emulator.client.stats()
        accepted = stats["accepted"]
        delivered = sum(accepted.values())
        print(f"delivered to the emulator: {delivered} ({accepted})")
        print(
            f"unique $insert_ids: {stats['unique_events']}, duplicates: {stats['duplicate_events']}"
        )
        print(f"dead-lettered: {count_dead_letters(bootstrap)} (to {DEAD_LETTER_TOPIC!r})")
        if delivered != produced:
            sys.exit(f"lost {produced - delivered} messages")


if __name__ == "__main__":
    main()
