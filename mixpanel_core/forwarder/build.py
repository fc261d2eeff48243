"""Wiring a ``Forwarder`` from the configuration: consumer, ingestion client, dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mixpanel_core.config import Config
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.errors import ConfigError, TransportError
from mixpanel_core.forwarder.config import ForwarderSetup, resolve
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.forwarder.loop import Forwarder, Wait
from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.forwarder.progress import ProgressReporter
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.options import client_options
from mixpanel_core.messages import Endpoint, Message
from mixpanel_core.pipeline import Pipeline

CONSUMER_DEFAULTS = {"auto_offset_reset": "earliest"}
"""A new group starts from the oldest record: nothing produced before it started is skipped."""


def build_forwarder(
    config: Config, *, until_caught_up: bool = False
) -> tuple[Forwarder, IngestionClient]:
    """A ready ``Forwarder`` (and its ingestion client, to close after ``run``).

    ``until_caught_up`` also builds the reader of the group's committed offsets that
    ``run(until_caught_up=True)`` needs.
    """
    setup = resolve(config)
    consumer = _consumer(setup, "mixpanel-forwarder")
    group_reader = _consumer(setup, "mixpanel-forwarder-progress") if until_caught_up else None
    client = IngestionClient(setup.settings, setup.http, name="forwarder")

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: float | None
    ) -> Sequence[DeliveryReport]:
        return client.send_batch(endpoint, messages, wait=wait, deadline=deadline).reports

    dead_letters = None
    if setup.forwarder.dead_letter_topic:
        dead_letters = DeadLetterWriter(
            _dead_letter_producer(setup),
            setup.forwarder.dead_letter_topic,
            setup.forwarder.group_id,
        )
    metrics = ForwarderMetrics()
    # The enabled plugins' validation: what Mixpanel would refuse is dead-lettered up front.
    validate = Pipeline.from_config(config).problems
    forwarder = Forwarder(
        consumer,
        setup.topic,
        deliver,
        setup.forwarder,
        dead_letters=dead_letters,
        group_reader=group_reader,
        retry_policy=setup.http.retry_policy,
        metrics=metrics,
        progress=ProgressReporter(metrics, setup.forwarder.log_interval),
        validate=validate,
    )
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
    try:
        return kafka.KafkaConsumer(**settings)
    except (ValueError, TypeError, AssertionError):
        # kafka-python's message may echo option values, passwords included: name keys only.
        raise ConfigError(
            "forwarder.consumer: kafka-python refused the options "
            f"({', '.join(sorted(options)) or 'none given'}); check them against KafkaConsumer's "
            "documentation"
        ) from None
    except kafka.errors.KafkaError as exc:
        raise TransportError(
            f"the forwarder cannot reach Kafka at {_servers(setup)}: {exc}"
        ) from exc


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
    try:
        return kafka.KafkaProducer(**settings)
    except kafka.errors.KafkaError as exc:
        raise TransportError(
            f"the forwarder cannot reach Kafka at {_servers(setup)}: {exc}"
        ) from exc
