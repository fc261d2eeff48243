"""A pipeline's transports by name: each built once, on first use; all flushed and closed together.

A transport given as an object is taken as it is (or adapted, an official-style consumer); one
given as a ``TransportConfig`` is built by the entry point its ``type`` names.
"""

from __future__ import annotations

import logging
import reprlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

import attrs

from mixpanel_core.config import TransportConfig
from mixpanel_core.delivery import Reporter
from mixpanel_core.errors import BuildFailedError, ConfigError, MixpanelCoreError, TransportError
from mixpanel_core.messages import Message
from mixpanel_core.plugin import refuse_build
from mixpanel_core.process_exit import CLOSE_FLOOR, exit_before, redact_for
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.redactor import Redactor, Redactors, told
from mixpanel_core.registry import TRANSPORT_GROUP, load
from mixpanel_core.secrets import Secret
from mixpanel_core.transport import Transport, TransportContext, bounded, ignore_report

# The pipeline's name, under which flush and close failures have always been logged.
logger = logging.getLogger("mixpanel_core.pipeline")


REBUILD_AFTER = 1.0
"""Seconds after a transport's build failed before a message may build it again; doubled at each
failure in a row, up to ``REBUILD_AFTER_MOST``."""
REBUILD_AFTER_MOST = 30.0


@attrs.frozen
class _BuildFailure:
    """A failed build of a transport: until ``retry_at`` (``time.monotonic``), and while another
    thread builds it again, a message for it is refused at once, not held for a build of its
    own (a Kafka producer waits up to ``max_block_ms`` for a broker: threads each waited that
    long, in turn, while the broker was down). Not a ``ConfigError`` of our own checks: the
    configuration is wrong, and building again says so at once; but a ``BuildFailedError``
    (what a third party's ``from_config`` raised) may be its server down."""

    at: float
    retry_at: float
    failures: int
    error: Exception

    def refusal(self, name: str) -> Exception:
        """The error for a message refused meanwhile, saying when the build failed and when it
        is tried again, then what it raised."""
        now = time.monotonic()
        again = (
            f"is tried again in {self.retry_at - now:.1f}s"
            if now < self.retry_at
            else "is being tried again"
        )
        text = (
            f"transports.{name}: not built: its build failed {now - self.at:.1f}s ago and "
            f"{again} (failed {self.failures} time(s) in a row): {self.error}"
        )
        # Of the failure's kind: a caller that tells configuration errors (a BuildFailedError
        # is one) from outages must see the same mistake the same way each time.
        return (
            BuildFailedError(text)
            if isinstance(self.error, BuildFailedError)
            else TransportError(text)
        )


class NamedTransports:
    """The configured transports (``specs``: name to a transport object or ``TransportConfig``),
    built under one lock, each at most once, and flushed or closed all together."""

    def __init__(self, specs: Mapping[str, object], credentials: Redactors) -> None:
        self.specs = dict(specs)
        self._credentials = credentials
        """For what a transport raised, told in a log or an error of ours (docs/errors.md)."""
        self.built: dict[str, Transport] = {}
        """The transports built so far, in the order they were built."""
        self._users: dict[str, set[str]] = {}
        """Per transport, those that asked for it (see ``get``): they hand it messages."""
        self._users_lock = threading.Lock()
        """Never held while a transport is built (``_lock`` is): a flush or close, bounded by
        its timeout, must not wait for another thread's build."""
        self._building: set[str] = set()
        self._failed: dict[str, _BuildFailure] = {}
        """The transports whose last build failed (see ``_BuildFailure``)."""
        self._lock = threading.RLock()
        self._closed = False
        """Whether ``close`` ran: a transport not built by then is never built for a message
        (see ``get``)."""
        in_fork_children(self, NamedTransports._after_fork)

    def get(
        self,
        name: str,
        context: Callable[[str], TransportContext],
        needed_by: str | None = None,
    ) -> Transport:
        """The transport called ``name``, built on first use with ``context(name)``.

        ``context`` is handed per call, not kept: it is the pipeline's method, and kept here it
        would make a reference cycle (see ``Pipeline.reporter``). ``needed_by``: the transport
        asking for it (a wrapper for its inner transport, a ``multiprocessing_queue`` for its
        fallback), which is then flushed and closed before it.
        """
        if needed_by is not None:
            self.note_use(needed_by, name)
        built = self.built.get(name)
        if built is not None:
            return built
        if self._closed and needed_by is None:
            # As a built transport refuses once closed: a client closed before its first
            # message built a new transport for a message after close, and a thread and an
            # exit flush with it, whatever close() had said. A transport may still build the
            # one it hands messages to (a close interrupted by a signal leaves the fallback
            # of a multiprocessing_queue to the exit close).
            raise TransportError(
                f"transport {name!r} is closed (its client was closed before it was first "
                "used); it cannot take messages"
            )
        asked = time.monotonic()
        failed = self._failed.get(name)
        if failed is not None and (asked < failed.retry_at or name in self._building):
            raise failed.refusal(name)  # at once: not after another thread's build again
        with self._lock:
            if name in self.built:
                return self.built[name]
            failed = self._failed.get(name)
            if failed is not None and (failed.at >= asked or time.monotonic() < failed.retry_at):
                # It failed while this thread waited for the lock: built again now, it would
                # hold this message as long, and every one queued behind it in turn.
                raise failed.refusal(name)
            spec = self.specs.get(name)
            if spec is None:
                raise ConfigError(
                    f"transports.{name}: not configured; configured: {', '.join(self.specs)}"
                )
            if name in self._building:
                raise ConfigError(f"transports.{name}: refers to itself through other transports")
            self._building.add(name)
            try:
                transport = self._build(spec, context(name))
            except Exception as exc:
                if isinstance(exc, ConfigError) and not isinstance(exc, BuildFailedError):
                    raise  # the configuration is wrong: said again at once, each time
                self._failed[name] = _failed_again(failed, exc)
                raise
            finally:
                self._building.discard(name)
            self._failed.pop(name, None)
            self.built[name] = transport
            redact_for(transport, self._credentials.transport(name))
            self._exit_in_turn(name)
            return transport

    def note_use(self, user: str, used: str) -> None:
        """Transport ``user`` hands messages to ``used`` (now or later): flushed and closed
        before it."""
        if user not in self._users.get(used, ()):
            with self._users_lock:
                self._users.setdefault(used, set()).add(user)
            self._exit_in_turn(used)

    def _exit_in_turn(self, name: str) -> None:
        """Have the exit closes of ``name`` and of the built transports it hands messages to,
        or that hand it messages, run in the order ``close`` uses (see ``_in_turn``): a
        process that exits without ``close()`` closes them in that order too."""
        with self._users_lock:
            users = set(self._users.get(name, ()))
            used = {other for other, them in self._users.items() if name in them}
        built = dict(self.built)
        if name not in built:
            return  # told again once built (``get``)
        for user in users & built.keys():
            exit_before(built[user], built[name])
        for other in used & built.keys():
            exit_before(built[name], built[other])

    def _after_fork(self) -> None:
        # A child forked while another thread of the parent's was building a transport
        # inherits the lock held and the name in ``_building``, by a thread it does not have:
        # its first track() would wait forever, or be told the transport refers to itself.
        # Fresh ones, whoever held them: a build the forking thread was in itself (a
        # transport's from_config forked) goes on, and its ``with`` releases the lock it took.
        self._lock = threading.RLock()
        self._users_lock = threading.Lock()
        self._building = set()

    def _in_turn(self, done: set[str]) -> list[tuple[str, Transport]]:
        """The transports built so far and not in ``done``, each after those that asked for it
        (they may hand it messages while they flush or close); otherwise the last built first,
        as a wrapper built its inner transport before itself."""
        built = dict(self.built)  # one step under the GIL: no lock a build holds
        with self._users_lock:
            users = {name: set(them) for name, them in self._users.items()}
        ordered: list[tuple[str, Transport]] = []
        placed = set(done)

        def place(name: str, path: frozenset[str]) -> None:
            if name in placed or name in path or name not in built:
                return  # placed, or a loop (two transports each other's fallback): cut here
            for user in sorted(users.get(name, ())):
                place(user, path | {name})
            placed.add(name)
            ordered.append((name, built[name]))

        for name in reversed(built):
            place(name, frozenset())
        return ordered

    def _build(self, spec: object, context: TransportContext) -> Transport:
        name = context.name
        if not isinstance(spec, TransportConfig):
            return adapt_transport(spec, name, context.report, self._credentials.transport(name))
        path = f"transports.{name}.type"
        if context.config is not None and name not in context.config.transports:
            # Configured by no file (Mixpanel(token) and no [transports]): say whose it is.
            path = f"{path} (the transport a client sends through when none is configured)"
        factory = load(TRANSPORT_GROUP, spec.type, path)
        from_config = getattr(factory, "from_config", None)
        if from_config is None:
            raise ConfigError(f"transports.{name}.type: {spec.type!r} has no from_config()")
        failure: Exception | None = None
        try:
            transport: object = from_config(spec.options, context)
        except Exception as exc:
            failure = exc
        if failure is not None:
            # Raised here, out of the handler, so that what it raised is not the new error's
            # __context__ either when it quotes a credential.
            self._refuse_build(spec, context, failure)
        if not isinstance(transport, Transport):
            # Said now, naming it, rather than as an AttributeError at its first send or flush.
            raise ConfigError(
                f"transports.{name}.type: {spec.type!r} built an object of type "
                f"{type(transport).__name__}, not a transport (send, flush, close)"
            )
        return transport

    def _refuse_build(
        self, spec: TransportConfig, context: TransportContext, failure: Exception
    ) -> NoReturn:
        """Raise the error for a ``from_config`` that raised ``failure``, redacted of the
        credentials the transport was given (see ``Redactor``)."""
        name = context.name
        path = f"transports.{name}"
        if isinstance(failure, TransportError) and not str(failure).startswith(
            (f"{path}:", f"transport {name!r} ")
        ):
            # A third party's outage (its server down): named as every later refusal names it.
            said, cause = told(failure, self._credentials.transport(name))
            raise TransportError(f"{path}: {spec.type!r} could not be built: {said}") from cause
        # Not raw at the first track(), which builds it: a configuration error naming the
        # table, or ours as it is; redacted either way.
        refuse_build(path, spec.type, failure, spec.options, context.settings, TransportError)

    def name_of(self, transport: Transport) -> str:
        """The name ``transport`` was built under (``"?"`` for one not built here)."""
        return next((n for n, t in self.built.items() if t is transport), "?")

    def flush(self, timeout: float | None = None) -> list[Message]:
        """Flush every transport built so far; returns the messages they still hold."""
        return self._each("flush", timeout)

    def close(self, timeout: float | None = None) -> list[Message]:
        """Close every transport built so far; returns the messages they gave up on. Those not
        built by then are never built (``get`` refuses them)."""
        try:
            return self._each("close", timeout)
        finally:
            self._closed = True

    def _each(self, verb: str, timeout: float | None) -> list[Message]:
        """``verb`` (flush or close) on every transport, even after one raised.

        ``timeout`` is checked first (``bounded``): refused, no transport is touched. It bounds
        the call, not each transport: each counts it from the start of the call, as each exit
        close counts its bound from the start of exit (``exit_time_left``); several transports
        given ``close(5)`` took 5 s each, in turn, and a shutdown sized on the call was cut
        short. A transport fed by others counts it from the end of theirs, which ran in its
        place (a ``multiprocessing_queue`` hands its fallback what its close gives up on).

        A transport that raises does not spare the others their flush, or their close (their
        threads and exit hooks, what they hold): the first error is raised once all have
        run. What the others returned is then left out of the return, and logged: a flush
        left it queued, a close reported it FAILED.
        """
        bounded(timeout, 0.0)
        started = time.monotonic()
        ended: dict[str, float] = {}
        left: list[Message] = []
        error: Exception | None = None
        raised_by = ""
        done: set[str] = set()
        # Until none is left: one can be built while another flushes or closes (the fallback
        # of a multiprocessing_queue that finds its sender dead), and holds messages then.
        while turn := self._in_turn(done):
            for name, transport in turn:
                done.add(name)
                bound = None if timeout is None else self._time_left(name, timeout, started, ended)
                try:
                    left.extend(_held(getattr(transport, verb)(bound), name, verb))
                except Exception as exc:
                    if error is None:
                        error, raised_by = self.safe_to_raise(exc, name, verb), name
                    else:
                        said = told(exc, self._credentials.transport(name))[0]
                        logger.error("%s of transport %r failed too: %s", verb, name, said)
                finally:
                    ended[name] = time.monotonic()
        if error is not None:
            if left:
                logger.error(
                    "%d message(s) other transports could not deliver are not returned by "
                    "this %s, which raises: %s",
                    len(left),
                    verb,
                    told(error, self._credentials.transport(raised_by))[0],
                )
            raise error
        return left

    def safe_to_raise(
        self, error: Exception, name: str, method: str, call: Secret | None = None
    ) -> Exception:
        """What transport ``name`` raised from ``method``, to raise to the caller as it is, but
        named (``note_origin``); unless a traceback of it prints a credential (``told``; with
        ``call``, the API secret of the message it was sending): then a ``TransportError``
        saying it, redacted, with no cause (docs/errors.md)."""
        said, kept = told(error, self._credentials.transport(name, call))
        if kept is None:
            return TransportError(f"transport {name!r} raised in {method}: {said}")
        note_origin(error, name, method)
        return error

    def _time_left(
        self, name: str, timeout: float, started: float, ended: dict[str, float]
    ) -> float:
        """What is left of ``timeout`` for transport ``name``, counted from ``started`` or, if
        later, from the end of the transports that feed it (``ended``: by name, this call's);
        at least ``CLOSE_FLOOR`` (or ``timeout``, if smaller), as at exit: a transport after a
        slow one gave up on a request it had just sent, which Mixpanel applied."""
        with self._users_lock:
            feeders = self._users.get(name, set()) & ended.keys()
        since = max((ended[feeder] for feeder in feeders), default=started)
        return max(since + timeout - time.monotonic(), min(timeout, CLOSE_FLOOR))


def _failed_again(before: _BuildFailure | None, error: Exception) -> _BuildFailure:
    """The failure of a build after ``before`` (the one before it in a row, if any)."""
    failures = 1 if before is None else before.failures + 1
    # The exponent capped: 2.0 ** 1024 is no float (a day's outage reaches it).
    wait = min(REBUILD_AFTER * 2.0 ** min(failures - 1, 16), REBUILD_AFTER_MOST)
    now = time.monotonic()
    return _BuildFailure(now, now + wait, failures, error)


def note_origin(error: BaseException, name: str, method: str) -> None:
    """Add to ``error``, raised by transport ``name``'s ``method`` and passed on as it is, a
    note naming them (printed under its traceback): a third party's ``OSError`` named neither.
    mixpanel-core's own errors are left alone: they name their transport already."""
    note = f"(raised by transport {name!r} in {method})"
    if not isinstance(error, MixpanelCoreError) and note not in getattr(error, "__notes__", ()):
        error.add_note(note)  # once: a transport may raise one exception object again


def _held(answer: object, name: str, verb: str) -> list[Message]:
    """What transport ``name`` answered ``verb`` (flush or close), checked: the messages it holds.

    A transport that forgot its ``return ()`` would otherwise fail here as "'NoneType' object
    is not iterable", naming nothing; one answering something else would have it taken for
    messages, and returned to the caller as such.
    """
    if not isinstance(answer, Sequence) or isinstance(answer, str | bytes):
        raise TransportError(
            f"transport {name!r} answered {verb}() with {reprlib.repr(answer)}, of type "
            f"{type(answer).__name__}: a transport returns the list of messages it still "
            "holds (an empty one when it holds none)"
        )
    held = [message for message in answer if isinstance(message, Message)]
    if len(held) != len(answer):
        wrong = next(item for item in answer if not isinstance(item, Message))
        raise TransportError(
            f"transport {name!r} answered {verb}() with a {type(answer).__name__} holding "
            f"{reprlib.repr(wrong)}, of type {type(wrong).__name__}: a transport returns the "
            "list of messages it still holds"
        )
    return held


def adapt_transport(
    candidate: object,
    name: str = "default",
    report: Reporter | None = None,
    redactor: Redactor | None = None,
) -> Transport:
    """Accept a transport, or an official-style consumer with ``send(endpoint, json)``
    (``redactor``: for what it raises, in the reports; see docs/errors.md)."""
    from mixpanel_core.consumer_adapter import ConsumerTransport, is_official_consumer

    if is_official_consumer(candidate):
        return ConsumerTransport(candidate, name, report or ignore_report, redactor)
    if isinstance(candidate, Transport):
        return candidate
    raise TransportError(
        f"{type(candidate).__name__} is neither a transport (send/flush/close) nor a consumer "
        "with send(endpoint, json_message)"
    )
