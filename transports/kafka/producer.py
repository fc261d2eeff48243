"""Building, hurrying, closing and releasing a kafka transport's kafka-python producer."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from mixpanel_core.kafka import bounded_build, headers
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client
from mixpanel_core.kafka.options import client_options, refuse_transport_owned
from mixpanel_core.version import __version__

from .log import logger

DURABLE_PRODUCER_DEFAULTS: Mapping[str, Any] = {"acks": "all", "enable_idempotence": True}
"""Stored by every in-sync replica, written once per send; ``producer = {...}`` may override."""

BUILD_MARGIN = bounded_build.BUILD_MARGIN
"""Seconds a producer's build may run past its bootstrap bound before it is given up (see
``mixpanel_core.kafka.bounded_build``); the transport's own name for it, so that its tests
can shorten it for the transport alone."""


def headers_for(endpoint: str) -> headers.Headers:
    return [
        (headers.ENDPOINT, endpoint.encode()),
        (headers.SCHEMA, headers.SCHEMA_VERSION.encode()),
        (headers.LIBRARY, __version__.encode()),
    ]


def build_producer(
    bootstrap_servers: str | Sequence[str], options: Mapping[str, Any], name: str
) -> Any:
    kafka = kafka_python()
    path = f"transports.{name}.producer"
    refuse_transport_owned(options, path)
    settings = {
        **DURABLE_PRODUCER_DEFAULTS,
        **client_options(options, kafka.KafkaProducer.DEFAULT_CONFIG, path),
    }
    settings["bootstrap_servers"] = (
        bootstrap_servers if isinstance(bootstrap_servers, str) else list(bootstrap_servers)
    )
    if "bootstrap_timeout_ms" not in options and "api_version" not in options:
        # kafka-python finds the broker's version when the producer is built, waiting up to
        # bootstrap_timeout_ms (30 s) whatever max_block_ms says: bounded by it too, so a
        # transport built (on the first send) with no broker up fails within max_block_ms.
        defaults = kafka.KafkaProducer.DEFAULT_CONFIG
        settings["bootstrap_timeout_ms"] = min(
            settings.get("max_block_ms", defaults["max_block_ms"]),
            defaults["bootstrap_timeout_ms"],
        )
    producer = build_client(
        kafka.KafkaProducer, settings, path, options, f"transport {name!r}", margin=BUILD_MARGIN
    )
    # Its own exit hook flushes for 1 s, raises KafkaTimeoutError when the broker is gone and
    # reports nothing: the transport's bounded close at exit (process_exit) replaces it.
    producer._unregister_cleanup()
    if settings["acks"] == 0:
        # The producer then completes a send once the record is written to the socket, so
        # ACCEPTED no longer means the broker stored it: say so once, where it was chosen.
        logger.warning(
            "transport %r: %s.acks = 0: messages are reported ACCEPTED without any "
            "acknowledgement from the broker and may be lost",
            name,
            path,
        )
    return producer


@contextlib.contextmanager
def hurried(producer: Any) -> Iterator[None]:
    # Linger no more while inside: what is batched (and what is sent meanwhile) leaves now
    # rather than after linger_ms, which may be longer than the bound. This is the start of
    # KafkaProducer.flush(), which then waits batch by batch, each for the whole timeout;
    # its end (the count of flushes in progress going down) is ours, so lingering resumes.
    accumulator = getattr(producer, "_accumulator", None)
    sender = getattr(producer, "_sender", None)
    flushes = getattr(accumulator, "_flushes_in_progress", None)
    if accumulator is None or sender is None or flushes is None:
        yield
        return
    accumulator.begin_flush()
    sender.wakeup()
    try:
        yield
    finally:
        flushes.decrement()


def close_producer(producer: Any, timeout: float) -> None:
    kafka = kafka_python()
    try:
        producer.close(timeout=timeout)
    except kafka.errors.KafkaTimeoutError:
        # KafkaProducer.close() flushes first and raises before stopping its sender thread
        # when records are still outstanding; stop that thread ourselves so close() stays
        # bounded and nothing keeps running after it.
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
        # Its own close() would otherwise run again from __del__ and raise the same timeout.
        producer._closed = True


def release_producer(producer: Any, cancel_exit_close: Callable[[], None]) -> None:
    """For a transport freed without ``close()``: stop its producer, forget its exit close.

    Nothing is left to wait for (see ``KafkaTransport.__init__``), and this may run on the
    sender thread, so the thread is told to end, not waited for.
    """
    cancel_exit_close()
    if getattr(producer, "_closed", True):
        return
    producer._closed = True  # so its __del__ does not close it again
    sender = getattr(producer, "_sender", None)
    if sender is not None and sender.is_alive():  # not the parent's, in a fork() child
        sender.initiate_close()  # it still sends anything left, then closes its connections
