"""Building, hurrying, closing and releasing a kafka transport's kafka-python producer."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from mixpanel_core.errors import TransportError
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client
from mixpanel_core.kafka.options import client_options, refuse_transport_owned
from mixpanel_core.version import __version__

from .log import logger

DURABLE_PRODUCER_DEFAULTS: Mapping[str, Any] = {"acks": "all", "enable_idempotence": True}
"""Stored by every in-sync replica, written once per send; ``producer = {...}`` may override."""

BUILD_MARGIN = 5.0
"""Seconds a producer's build may run past its bootstrap bound before it is given up (see
``_built_within``): kafka-python's own failure, when no broker answers, comes well before."""

_given_up: set[str] = set()
"""The transports (by name) whose last build was given up and still runs: stuck in a TLS
handshake, it holds its thread and sockets, so none is started beside it until it ends."""
_given_up_lock = threading.Lock()


def _forget_given_up() -> None:
    # A fork() child has none of its parent's threads: no build of its own is stuck.
    global _given_up_lock
    _given_up.clear()
    _given_up_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_given_up)


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
    bound = settings.get(
        "bootstrap_timeout_ms", kafka.KafkaProducer.DEFAULT_CONFIG["bootstrap_timeout_ms"]
    )
    producer = _built_within(
        max(0, bound) / 1000 + BUILD_MARGIN,
        lambda: build_client(kafka.KafkaProducer, settings, path, options, f"transport {name!r}"),
        name,
        settings["bootstrap_servers"],
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


def _built_within(bound: float, build: Callable[[], Any], name: str, servers: object) -> Any:
    """``build()`` on a thread of its own, given up after ``bound`` seconds.

    kafka-python bounds its bootstrap (``bootstrap_timeout_ms``) but not a TLS handshake: with
    ``security_protocol = "SSL"`` against a listener that speaks plain Kafka, the handshake
    waits for an answer that never comes, and the send that builds the transport with it
    (measured: still waiting after 150 s). A producer that is built after all, once given
    up, is closed at once. While a build given up still runs, another for the same transport
    (the next send, the watchdog's next try) fails at once rather than leave one more thread
    and its sockets stuck beside it.
    """
    refusal = (
        f"transport {name!r} cannot reach Kafka at {servers}: no connection was made within "
        f"{bound:g}s; kafka-python does not bound a TLS handshake, so check that "
        "security_protocol matches the listener (SSL against a plain one never ends)"
    )
    with _given_up_lock:
        if name in _given_up:
            raise TransportError(f"{refusal}; that build still waits, so no other is started")
    lock = threading.Lock()
    done = threading.Event()
    outcome: list[tuple[bool, Any]] = []  # (built, the producer or what was raised)
    given_up = False

    def run() -> None:
        try:
            result: tuple[bool, Any] = (True, build())
        except BaseException as exc:
            result = (False, exc)
        with lock:
            if not given_up:
                outcome.append(result)
                done.set()
                return
        with _given_up_lock:
            _given_up.discard(name)
        if result[0]:
            close_producer(result[1], 0)

    threading.Thread(target=run, name=f"mixpanel-core-kafka-build-{name}", daemon=True).start()
    done.wait(bound)
    with lock:
        if not outcome:
            given_up = True
            with _given_up_lock:
                _given_up.add(name)
            raise TransportError(refusal)
    built, value = outcome[0]
    if not built:
        raise value
    return value


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
