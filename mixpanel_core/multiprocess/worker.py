"""The worker side: a producer-only transport, and a client for a worker process.

A worker never starts a sender; it writes batches to the channel its owner shared. Fork
children get one automatically (the owner's transport turns into one in the child); a
``spawn`` or ``forkserver`` worker is handed the channel and builds its client with
``worker_client``.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TypeVar

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config, load_config
from mixpanel_core.delivery import DeliveryReport, Reporter
from mixpanel_core.errors import ConfigError, TransportError
from mixpanel_core.messages import Message
from mixpanel_core.multiprocess.channel import QueueChannel
from mixpanel_core.multiprocess.producer import FrameProducer
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.process_exit import at_exit, owned
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.transport import Transport, TransportContext
from mixpanel_core.weak import weakly

T = TypeVar("T")


class ProducerTransport:
    """Queues this process's messages for the owner's sender; counted until it is closed.

    One dropped without ``close`` (a worker client built per request) writes what it holds
    as usual; then its linger thread ends, its exit hook is cancelled and the channel learns
    it closed, so the owner's close does not wait for it (see ``_Registration``).
    """

    def __init__(
        self, channel: QueueChannel, context: TransportContext, exit_owner: object | None = None
    ) -> None:
        self._channel = channel
        self._context = context
        self._anchor = _Anchor()
        self._exit_owner = weakref.ref(self if exit_owner is None else exit_owner)
        """The transport the pipeline holds, whose exit close this one's is (itself, or the
        ``multiprocessing_queue`` it works for in a worker), weakly: see ``_opened``."""
        self._start()
        in_fork_children(self, ProducerTransport._start)

    def anchor_to(self, pipeline: object) -> None:
        """Keep ``pipeline`` (held weakly otherwise) alive while lines wait to be written: it
        builds the ``fallback`` when the sender is found gone, also for the last batch of a
        client dropped without ``close()``."""
        self._anchor.ref = weakref.ref(pipeline)

    def _start(self) -> None:
        # Also run in a child forked from this process: the batch it inherited is the
        # parent's to send (sent by both, it was delivered twice), and so are the ledger slot
        # (freed by the child's close, the owner stopped waiting for the parent) and the
        # writer, whose chunks carry the parent's pid (the sender mixed the two processes'
        # frames). The child gets its own, counted open from its first message only, so that
        # a child that never sends does not hold up the owner's close (and has nothing to
        # close at exit).
        inherited = getattr(self, "_producer", None)
        if inherited is not None:
            # In a fork() child: the parent's producer (its batch, its anchor on the pipeline)
            # must not keep this client alive, with its new producer, for the child's life.
            inherited.forget_batch()
        self._registration = _Registration(self._channel)
        # ``_opened`` held weakly: the producer holding this transport would make a cycle, and
        # a transport dropped without close() would wait for a full garbage collection.
        self._producer = FrameProducer(
            self._channel,
            self._context,
            weakly(self._opened),
            self._registration.release,
            self._anchor.get,
        )

    def _opened(self) -> None:
        # Before this producer's first frame is written (its first send, under its batch lock).
        registration = self._registration
        registration.slot = self._channel.producer_opened()
        # The exit close reaches the producer, not this transport: one dropped without close()
        # is freed at once, while its producer lives on until its lines are written, and those
        # must still be written if the process exits first. The producer's close frees the
        # slot (``on_done``) once its last frame is written: freed while a thread still wrote,
        # the owner stopped waiting and the frame came too late. The exit close also waits
        # for a close another thread has under way: the process ends when it returns. It
        # belongs to the transport the pipeline holds: it runs before the fallback's.
        bound = self._channel.options.shutdown_timeout
        owner = self._exit_owner()
        registration.cancel_exit_close = close_at_exit(
            self._producer,
            lambda producer: producer.close(bound, at_exit=True),
            owner=self if owner is None else owner,
        )

    def send(self, message: Message) -> None:
        self._producer.send(message)

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        return self._producer.flush(None if timeout is None else time.monotonic() + timeout)

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        """Write what is left to the pipe, waiting at most ``timeout`` for room.

        Returns (and reports FAILED) what could not be written in time. Writes finish in the
        calling thread, so once this returns nothing of this producer is still on its way: the
        owner's stop request, written after every producer closed, comes after all of it. A
        close while another thread's is under way returns nothing at once (a reporter may
        call it); the producer stays counted open until that other close is over.
        """
        bound = self._channel.options.shutdown_timeout if timeout is None else timeout
        return self._producer.close(bound)


class _Anchor:
    """A weak reference set later (the pipeline is built after its producer transport)."""

    def __init__(self) -> None:
        self.ref: weakref.ref[object] | None = None

    def get(self) -> object:
        return self.ref() if self.ref is not None else None


class _Registration:
    """What a producer's first send registered: its ledger slot and its exit hook.

    Released once: by the producer's ``close``, once its last frame is written, or by the
    linger thread of a producer freed without it (which is why it holds neither the producer
    nor its transport).
    """

    def __init__(self, channel: QueueChannel) -> None:
        self._channel = channel
        self.slot = -1
        self.cancel_exit_close: Callable[[], None] | None = None
        self._released = False
        self._releasing = threading.Lock()

    def release(self) -> None:
        # Atomic, and once: a second release (a close, and the linger thread of the producer
        # freed right after it) must not free the ledger slot twice: the second could free a
        # slot another producer has just taken.
        with self._releasing:
            if self._released:
                return
            self._released = True
            # Dropped as well: the exit hook's closure holds this registration.
            cancel, self.cancel_exit_close = self.cancel_exit_close, None
        if cancel is not None:
            cancel()
        self._channel.producer_closed(self.slot)


def close_at_exit(
    target: T, close: Callable[[T], object], *, owner: object | None = None
) -> Callable[[], None]:
    """``close(target)`` when this process exits, if ``target`` is still alive then (so that
    nothing it holds is lost); held weakly until then. Returns a function that cancels it.

    ``owner`` (``target`` by default): the transport the close belongs to, for the order of
    the exit closes (see ``process_exit.owned``).
    """
    ref = weakref.ref(target)
    pid = os.getpid()

    def run() -> None:
        alive = ref()
        # fork() children inherit atexit handlers: only the process that registered acts.
        if alive is not None and os.getpid() == pid:
            close(alive)

    return at_exit(owned(target if owner is None else owner, run))


def worker_client(
    channel: QueueChannel, config: Config | str | os.PathLike[str] | None = None
) -> Mixpanel:
    """A client for a worker process whose messages go through ``channel``.

    ``config`` defaults to the owner's configuration, which the channel carries; pass the
    path of the TOML file (or a ``Config``) to load it in the worker instead. Plugins and
    routes apply in the worker as in the owner; the channel's ``multiprocessing_queue``
    transport becomes a producer on the channel.
    """
    if os.getpid() == channel.owner_pid:
        # A worker producer here would count as open, and the owner's close would wait for it.
        raise ConfigError(
            f"transports.{channel.spec.transport}: worker_client() is for worker processes; "
            "in the process that built the transport, send through its own client"
        )
    if config is None:
        config = channel.spec.config
    elif not isinstance(config, Config):
        config = load_config(config)
    name = channel.spec.transport
    if name not in config.transports:
        raise ConfigError(
            f"transports.{name}: the channel belongs to a transport this configuration "
            f"({config.source}) does not have"
        )
    if not config.mixpanel.token:
        raise ConfigError(f"mixpanel.token: required to build a client ({config.source})")
    # The producer reports through what the pipeline gives its own transports
    # (``Pipeline.reporter``) and resolves its fallback through a weak reference, kept
    # strong only while lines wait (``anchor_to``): holding the pipeline, the producer would
    # keep it, and so itself, alive in a cycle, and a client dropped without close() would
    # keep its thread and ledger slot until the garbage collector's next full pass.
    reporters: list[Reporter] = []
    pipelines: list[weakref.ref[Pipeline]] = []

    def report(delivery: DeliveryReport) -> None:
        reporters[0](delivery)

    def resolve(other: str) -> Transport:
        pipeline = pipelines[0]()
        if pipeline is None:  # no lines wait: nothing needs the fallback
            raise TransportError(f"transports.{other}: the client of this worker is gone")
        return pipeline.transport(other, needed_by=name)

    context = TransportContext(name, config.mixpanel, report, resolve, config)
    producer = ProducerTransport(channel, context)
    pipeline = Pipeline.from_config(config, {**config.transports, name: producer})
    pipeline.check_routing()  # it routes the worker's messages, as the client's does
    if channel.options.fallback is not None:
        pipeline.hands_to(name, channel.options.fallback)
    reporters.append(pipeline.reporter)
    pipelines.append(weakref.ref(pipeline))
    producer.anchor_to(pipeline)
    return Mixpanel(config.mixpanel.token, config=config, pipeline=pipeline)
