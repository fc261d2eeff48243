"""Building a kafka-python client on a thread of its own, given up when it takes too long.

kafka-python 3.0.12 bounds its bootstrap (``bootstrap_timeout_ms``) but not a TLS handshake:
with ``security_protocol = "SSL"`` against a listener that speaks plain Kafka, the handshake
waits for an answer that never comes, and so does whatever built the client (a transport's
first send, the forwarder's start, ``replay-dead-letters``; measured: still waiting after
150 s). ``built_within`` hands back the client, or raises ``TransportError`` naming who built
it, the servers and the likely cause. A build given up is abandoned: the network clients it
made are closed, and the handshake waiting on their sockets ends with them. A client built
after all, once given up, is closed at once. While a build given up still runs (one stuck
somewhere closing its sockets does not end), another by the same ``who`` (the next send, the
watchdog's next try) fails at once rather than leave one more thread and its sockets stuck
beside it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from mixpanel_core.errors import TransportError
from mixpanel_core.kafka.client_library import kafka_python

ABANDON_WAIT = 2.0
"""Seconds to wait for an abandoned build to end, so that the next by the same ``who`` need
not find it still running (measured: a consumer, producer or admin client stuck in its TLS
handshake ends within a tenth of a second of its sockets closing)."""

WAIT_SLICE = 0.1
"""Seconds the thread waiting for a build sleeps at a time (see ``built_within``)."""

BUILD_MARGIN = 5.0
"""Seconds a build may run past its bootstrap bound before it is given up: kafka-python's own
failure, when no broker answers, comes well before."""

_given_up: set[str] = set()
"""Who (``"transport 'bus'"``, ``"the forwarder's consumer"``) has a build given up that still
runs: stuck in a TLS handshake, it holds its thread and sockets, so none is started beside it
until it ends."""
_given_up_lock = threading.Lock()


def _forget_given_up() -> None:
    # A fork() child has none of its parent's threads: no build of its own is stuck.
    global _given_up_lock
    _given_up.clear()
    _given_up_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_given_up)


def built_within(
    bound: float,
    build: Callable[[], Any],
    who: str,
    servers: object,
    abandon: Callable[[], None] = lambda: None,
) -> Any:
    """``build()`` on a thread of its own; ``TransportError`` after ``bound`` seconds, once
    ``abandon()`` has been called to free what the build holds."""
    cause = (
        "is a broker up there? If one is, check that security_protocol matches the listener: "
        "kafka-python does not bound a TLS handshake, and SSL against a plain one never ends"
    )
    with _given_up_lock:
        if who in _given_up:
            raise TransportError(
                f"{who} cannot reach Kafka at {shown_servers(servers)}: an earlier build of it "
                f"was given up and still waits, so no other is started; {cause}"
            )
    lock = threading.Lock()
    done = threading.Event()
    outcome: list[tuple[bool, Any]] = []  # (built, the client or what was raised)
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
            _given_up.discard(who)
        if result[0]:
            close_unused(result[1])

    thread_name = f"mixpanel-core-kafka-build-{_thread_suffix(who)}"
    thread = threading.Thread(target=run, name=thread_name, daemon=True)
    thread.start()
    deadline = time.monotonic() + bound
    # In slices: a signal the kernel hands to another thread (kafka-python's IO thread) runs
    # its Python handler only once this thread runs again, so waited in one piece, a SIGTERM
    # stopping the forwarder while it starts waited as long as the build.
    while not done.wait(max(0.0, min(WAIT_SLICE, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            break
    with lock:
        if not outcome:
            given_up = True
            with _given_up_lock:
                _given_up.add(who)
    if given_up:
        abandon()
        thread.join(ABANDON_WAIT)
        raise TransportError(
            f"{who} cannot reach Kafka at {shown_servers(servers)}: no broker answered "
            f"within {bound:g}s; {cause}"
        )
    built, value = outcome[0]
    if not built:
        raise value
    return value


def close_unused(client: Any) -> None:
    """Close a client nobody used: nothing was sent or read through it, so nothing waits (a
    producer's ``close(timeout=0)`` raises only for records it could not flush)."""
    kafka = kafka_python()
    if isinstance(client, kafka.KafkaConsumer):
        client.close(autocommit=False)
    elif isinstance(client, kafka.KafkaProducer):
        client.close(timeout=0)
    else:
        client.close()


def _thread_suffix(who: str) -> str:
    # "transport 'bus'" keeps the thread name the transport's builds always had: bus.
    prefix = "transport '"
    if who.startswith(prefix) and who.endswith("'"):
        return who[len(prefix) : -1]
    return who


def shown_servers(servers: object) -> str:
    """``bootstrap_servers`` as the messages quote them: ``HOST:PORT, HOST:PORT`` for a list
    (as the file writes it), not Python's ``['HOST:PORT']``."""
    if isinstance(servers, list | tuple):
        return ", ".join(map(str, servers))
    return str(servers)
