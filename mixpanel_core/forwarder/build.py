"""Wiring a ``Forwarder`` from the configuration: consumer, ingestion client, dead letters."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from typing import Any

from mixpanel_core.config import Config
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.forwarder.config import ForwarderSetup, resolve
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.forwarder.outcomes import REPORTER
from mixpanel_core.forwarder.progress import ProgressReporter
from mixpanel_core.ingestion import Deadline, IngestionClient, Wait
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client
from mixpanel_core.kafka.options import client_options
from mixpanel_core.messages import Endpoint, Message
from mixpanel_core.pipeline import Pipeline

CONSUMER_DEFAULTS = {"auto_offset_reset": "earliest"}
"""A new group starts from the oldest record: nothing produced before it started is skipped."""


def build_forwarder(
    config: Config, *, until_caught_up: bool = False, metrics: ForwarderMetrics | None = None
) -> tuple[Forwarder, IngestionClient]:
    """A ready ``Forwarder`` (and its ingestion client, to close after ``run``).

    ``until_caught_up`` also builds the reader of the group's committed offsets that
    ``run(until_caught_up=True)`` needs (the idle warning builds its own, when it needs it).
    ``metrics`` lets a metrics endpoint be bound before anything connects to Kafka (a port in
    use then fails fast); default: new counters.
    """
    setup = resolve(config)
    # What is built is closed again if a later part fails (a refused option, a plugin): an
    # open consumer or producer would keep its sockets and threads until the process ends.
    # In the order their mistakes are found without a broker: a misspelt plugin is said at
    # once, not after the bootstrap bound as "cannot reach Kafka" (the broker down too), and
    # the producer's options, which kafka-python checks as it is made, before any consumer
    # (one made and closed again logged a spurious ERROR after the error).
    with contextlib.ExitStack() as built:
        # The enabled plugins' validation: what Mixpanel would refuse is dead-lettered up front.
        # Their mixpanel_delivered hooks see each record's final outcome, when there are any.
        pipeline = Pipeline.from_config(config)
        client = IngestionClient(setup.settings, setup.http, name=REPORTER)
        built.callback(client.close)
        dead_letters = None
        # Under on_poison = "stop" a dead_letter_topic is not used: without a writer the first
        # poison or rejected record stops the forwarder, as that setting says.
        if setup.forwarder.on_poison == "dead_letter" and setup.forwarder.dead_letter_topic:
            producer = _dead_letter_producer(setup)
            built.callback(producer.close, 0)
            dead_letters = DeadLetterWriter(
                producer, setup.forwarder.dead_letter_topic, setup.forwarder.group_id
            )
        consumer = _consumer(setup, "mixpanel-forwarder")
        built.callback(consumer.close, autocommit=False)
        group_reader = None
        if until_caught_up:
            group_reader = _consumer(setup, "mixpanel-forwarder-progress")
            built.callback(group_reader.close, autocommit=False)

        def deliver(
            endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
        ) -> Sequence[DeliveryReport]:
            return client.send_batch(endpoint, messages, wait=wait, deadline=deadline).reports

        metrics = metrics if metrics is not None else ForwarderMetrics()
        forwarder = Forwarder(
            consumer,
            setup.topic,
            deliver,
            setup.forwarder,
            dead_letters=dead_letters,
            group_reader=group_reader,
            idle_reader=(
                functools.partial(_consumer, setup, "mixpanel-forwarder-idle-watch")
                if setup.forwarder.idle_warning
                else None
            ),
            retry_policy=setup.http.retry_policy,
            metrics=metrics,
            progress=ProgressReporter(metrics, setup.forwarder.log_interval),
            validate=pipeline.problems,
            report=pipeline.report if pipeline.observed else None,
        )
        built.pop_all()  # the forwarder owns them now, and closes them when it stops
    return forwarder, client


def _servers(setup: ForwarderSetup) -> str | list[str]:
    servers = setup.bootstrap_servers
    return servers if isinstance(servers, str) else list(servers)


def _consumer(setup: ForwarderSetup, client_id: str) -> Any:
    kafka = kafka_python()
    options = client_options(
        setup.forwarder.consumer, kafka.KafkaConsumer.DEFAULT_CONFIG, "forwarder.consumer"
    )
    settings = {
        "client_id": client_id,
        **CONSUMER_DEFAULTS,
        **options,
        "bootstrap_servers": _servers(setup),
        "group_id": setup.forwarder.group_id,
        "enable_auto_commit": False,
    }
    return build_client(
        kafka.KafkaConsumer, settings, "forwarder.consumer", options, "the forwarder's consumer"
    )


def _dead_letter_producer(setup: ForwarderSetup) -> Any:
    kafka = kafka_python()
    path = f"transports.{setup.forwarder.source}.producer"
    options = client_options(setup.producer, kafka.KafkaProducer.DEFAULT_CONFIG, path)
    settings = {
        # The source's options first (same cluster, same TLS/SASL), then durability we insist on.
        **options,
        "bootstrap_servers": _servers(setup),
        "acks": "all",
        "enable_idempotence": True,
        "client_id": "mixpanel-forwarder-dead-letters",
    }
    return build_client(
        kafka.KafkaProducer, settings, path, options, "the forwarder's dead-letter producer"
    )
