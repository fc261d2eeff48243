"""The pipeline: validate, enrich, route, send; and reports back through the hooks.

The hook implementations are looked up once, when the pipeline is built, and kept as plain
lists of functions, so a message costs a few function calls and no plugin-manager machinery.
"""

from __future__ import annotations

import logging
import reprlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

import pluggy

from mixpanel_core import hookspecs
from mixpanel_core.config import Config, TransportConfig
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.errors import (
    ConfigError,
    MixpanelCoreError,
    NotJSONError,
    PartialSendError,
    PluginError,
    Problem,
    TransportError,
    ValidationError,
)
from mixpanel_core.messages import Message
from mixpanel_core.plugin import PluginContext, build_failure, instantiate
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.registry import PLUGIN_GROUP, TRANSPORT_GROUP, load
from mixpanel_core.transport import Transport, TransportContext, bounded, ignore_report

logger = logging.getLogger(__name__)

_Impl = tuple[str, Callable[..., Any]]

REDACTION = "redaction"
LAST_PLUGINS = (REDACTION, "router")
"""Built-in plugins whose hook implementations run after every other one of their hook,
wherever ``[plugins] enabled`` lists them and whatever the others' ``trylast``: ``redaction``
(its ``mixpanel_enrich``), so that nothing another enricher adds leaves the process unredacted;
``router`` (its ``mixpanel_route``), so that any router of yours answers before ``[[routes]]``.
"""


def _compile(
    hook: pluggy.HookCaller, params: tuple[str, ...], order: Mapping[str, int]
) -> list[_Impl]:
    """The implementations of ``hook`` in call order, each callable positionally.

    The order is the documented one, made here rather than left to pluggy (which calls the
    last registered first, and puts each ``trylast`` in front of those before it, reversing
    them): ``tryfirst`` ones, then the others, then ``trylast`` ones, each group in the
    configured order (``order``: plugin name to its place); ``LAST_PLUGINS`` after them all.
    Hooks are looked up once here so that a message costs plain function calls.
    """

    def place(impl: pluggy.HookImpl) -> tuple[int, int]:
        # A plugin registered without a name (pluggy names it by its id) comes after the
        # named ones of its group.
        at = order.get(impl.plugin_name, len(order))
        if impl.plugin_name in LAST_PLUGINS:
            return 3, at
        return (0 if impl.tryfirst else 2 if impl.trylast else 1), at

    impls: list[_Impl] = []
    for impl in sorted(hook.get_hookimpls(), key=place):
        if impl.hookwrapper or impl.wrapper:
            raise ConfigError(
                f"plugins.{impl.plugin_name}: wrappers are not supported for {hook.name}"
            )
        function = impl.function
        if tuple(impl.argnames) != params:
            function = _by_name(function, tuple(impl.argnames), params)
        impls.append((impl.plugin_name, function))
    return impls


def _verdict(answer: object) -> list[Problem]:
    """The problems a validator answered; a ``TypeError`` saying what it answered instead.

    Read as problems without a look, a string would be one problem per character, a dict its
    keys, a list of strings problems without fields: a ValidationError that names nothing (or,
    under ``on_invalid = "drop"``, every message dropped) where the plugin is at fault.
    """
    if isinstance(answer, str | bytes | Mapping) or not isinstance(answer, Iterable):
        raise TypeError(
            f"returned {reprlib.repr(answer)}, of type {type(answer).__name__}: return a list "
            "of Problem(field, rule), or None"
        )
    problems = list(answer)
    for problem in problems:
        if not isinstance(problem, Problem):
            raise TypeError(
                f"returned a {type(answer).__name__} holding {reprlib.repr(problem)}, of type "
                f"{type(problem).__name__}: return a list of Problem(field, rule), or None"
            )
    return problems


def _by_name(
    function: Callable[..., Any], wanted: tuple[str, ...], params: tuple[str, ...]
) -> Callable[..., Any]:
    """Adapt an implementation that takes a subset of the hook's parameters."""

    def call(*args: Any) -> Any:
        return function(**{n: v for n, v in zip(params, args, strict=True) if n in wanted})

    return call


class Pipeline:
    """Runs each message through the plugins and hands it to its transports.

    Build it with ``Pipeline.from_config(config)``, or directly from plugin objects and
    transport objects (``Pipeline([("mine", Mine())], {"default": MemoryTransport()})``).
    Transports given as ``TransportConfig`` are built on first use by their entry points.
    """

    def __init__(
        self,
        plugins: Sequence[tuple[str, object]] = (),
        transports: Mapping[str, object] | None = None,
        config: Config | None = None,
    ) -> None:
        self.config = config or Config()
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.plugin_manager.add_hookspecs(hookspecs)
        for name, plugin in plugins:
            self.plugin_manager.register(plugin, name=name)
        # Each hook's implementations are put in order by _compile, whatever pluggy's order.
        order = {name: place for place, (name, _) in enumerate(plugins)}
        hook = self.plugin_manager.hook
        self._validators = _compile(hook.mixpanel_validate, ("message",), order)
        self._enrichers = _compile(hook.mixpanel_enrich, ("message",), order)
        self._redactors = [(n, f) for n, f in self._enrichers if n == REDACTION]
        """The ``redaction`` plugin's enricher, if enabled: also run on a message refused
        before enrichment, before its report goes to the observers (``_reject_as_made``)."""
        self._routers = _compile(hook.mixpanel_route, ("message", "transports"), order)
        self._observers = _compile(hook.mixpanel_delivered, ("report",), order)
        self._observe = Observers(self._observers)
        self._on_invalid = self.config.pipeline.on_invalid
        transports = self.config.transports if transports is None else transports
        if not transports:
            raise ConfigError("transports: none configured; add a [transports.NAME] table")
        self._specs = dict(transports)
        self.transport_names: tuple[str, ...] = tuple(self._specs)
        # Without routes: the only transport, or the one named ``default``.
        self._default_route: tuple[str, ...] = (
            self.transport_names
            if len(self.transport_names) == 1
            else ("default",)
            if "default" in self._specs
            else ()
        )
        self._built: dict[str, Transport] = {}
        self._building: set[str] = set()
        self._lock = threading.RLock()
        in_fork_children(self, Pipeline._after_fork)
        self._by_names: dict[tuple[str, ...], tuple[Transport, ...]] = {}
        self._defaults: tuple[Transport, ...] | None = None

    @classmethod
    def from_config(
        cls,
        config: Config,
        transports: Mapping[str, object] | None = None,
        extra_plugins: Sequence[tuple[str, object]] = (),
    ) -> Pipeline:
        """Load the enabled plugins by entry point and prepare the transports.

        ``transports`` replaces the configured ones (objects or ``TransportConfig``).
        ``extra_plugins`` are ``(name, object)`` pairs registered after the configured plugins
        (a command observing ``mixpanel_delivered``, for instance).
        """
        plugins: list[tuple[str, object]] = []
        for name in config.plugins:
            target = load(PLUGIN_GROUP, name, f"plugins.enabled: {name}")
            context = PluginContext(name, config.plugin_options.get(name, {}), config)
            plugins.append((name, instantiate(target, context)))
        plugins.extend(extra_plugins)
        return cls(plugins, config.transports if transports is None else transports, config)

    # -- the flow of one message ---------------------------------------------------------

    def submit(self, message: Message, *, enrich: bool = True) -> None:
        """Validate, enrich, route and send ``message``.

        ``enrich=False`` leaves out the enrichers, for a record that went through them when it
        was first sent (a dead letter, replayed): redaction would hash its hashes.

        What is sent is what was checked: a message an enricher changed is validated again,
        and it must encode as JSON. A message that fails either goes the way of any invalid
        one (``[pipeline] on_invalid``), before any transport sees it.
        """
        # The hot path of every track() call: plain loops over precompiled functions, and no
        # second validation unless an enricher answered a new message. Whatever a hook
        # implementation raises is its plugin's failure (PluginError, naming it), our own
        # errors included: only what validators return is a verdict on the message. The first
        # check is ``_passes`` written out, a function call fewer per message.
        try:
            message.json()  # see _passes
        except NotJSONError as exc:
            self._reject_as_made(NotJSONError(exc.problems, message.kind), message, enrich)
            return
        name = ""
        try:
            problems: list[Problem] | None = None
            for name, check in self._validators:  # noqa: B007 (name is read on failure)
                found = check(message)
                # None costs one test; an empty list (the other usual answer) two. Any other
                # answer is checked before it is read as a verdict (see _verdict).
                if found is not None and (found or found.__class__ is not list):
                    problems = [*(problems or ()), *_verdict(found)]
        except Exception as exc:
            raise PluginError(name, "mixpanel_validate", exc) from exc
        if problems:
            self._reject_as_made(ValidationError(problems, message.kind), message, enrich)
            return
        if enrich and self._enrichers:
            enriched = self._enrich(message)
            if enriched is not message:
                # Enrichers can break a rule the message kept (super properties taking it past
                # Mixpanel's 255 properties), so the message they made is checked in its turn.
                if not self._passes(enriched):
                    return
                message = enriched
        try:
            names: Sequence[str] | None = None
            for name, route in self._routers:  # noqa: B007 (name is read on failure)
                names = route(message, self.transport_names)
                if names is not None:
                    break
        except ConfigError:
            raise  # documented: a router finds no route for the message (see docs/hooks.md)
        except Exception as exc:
            raise PluginError(name, "mixpanel_route", exc) from exc
        try:
            if names is None:
                transports = self._defaults or self._default_transports()
            else:
                transports = self._resolve(names, name)
        except Exception as exc:
            # A transport that cannot be built (a broker down at its first use), or a route
            # to none: the caller gets the error, and whoever observes deliveries a FAILED
            # report, as of any message not sent.
            self.report(DeliveryReport(message, DeliveryStatus.FAILED, "pipeline", str(exc)))
            raise
        try:
            for transport in transports:
                transport.send(message)
        except Exception as exc:
            if len(transports) == 1:
                raise
            self._send_after_refusal(message, transports, transport, exc)

    def _passes(self, message: Message) -> bool:
        """Whether ``message`` encodes as JSON and no validator finds a problem with it; when
        not, it is rejected (``on_invalid``) and ``False`` returned."""
        try:
            # Encoded here, whatever the plugins: Python writes no integer of more than 4,300
            # digits, and such a value found by a transport would raise in the caller under
            # on_invalid = "drop", or leave the message half-sent to several transports. The
            # bytes are cached: validators measure them and transports send them.
            message.json()
        except NotJSONError as exc:
            self.reject(NotJSONError(exc.problems, message.kind), message)
            return False
        problems = self.problems(message)
        if problems:
            self.reject(ValidationError(problems, message.kind), message)
            return False
        return True

    def _enrich(self, message: Message) -> Message:
        """What the enrichers make of ``message``, each given what the previous returned."""
        name = ""
        try:
            for name, enrich in self._enrichers:  # noqa: B007 (name is read on failure)
                enriched = enrich(message)
                if enriched is not None:
                    if not isinstance(enriched, Message):
                        # Said now, naming the plugin: a transport would fail on it later
                        # without saying who made it, or a memory transport keep it.
                        raise TypeError(
                            f"returned an object of type {type(enriched).__name__}, not a "
                            "Message: return a changed copy (with_properties, attrs.evolve) "
                            "or None"
                        )
                    message = enriched
        except Exception as exc:
            raise PluginError(name, "mixpanel_enrich", exc) from exc
        return message

    def _send_after_refusal(
        self,
        message: Message,
        transports: tuple[Transport, ...],
        refused: Transport,
        error: Exception,
    ) -> NoReturn:
        """Offer the message to the transports after one that refused it, then raise.

        Stopping at the refusal would leave the message half-sent: taken by the transports
        before, never offered to those after, and a caller that sends it again would
        duplicate it where it was taken. So each transport gets its chance, and the error
        says which took it.
        """
        names = {id(built): name for name, built in self._built.items()}
        errors: dict[str, Exception] = {names.get(id(refused), "?"): error}
        for transport in transports[transports.index(refused) + 1 :]:
            try:
                transport.send(message)
            except Exception as exc:
                errors[names.get(id(transport), "?")] = exc
        taken = [names.get(id(t), "?") for t in transports if names.get(id(t), "?") not in errors]
        raise PartialSendError(taken, errors) from error

    def _default_transports(self) -> tuple[Transport, ...]:
        """Where messages go when no router answers: the only transport, or ``default``."""
        if self._defaults is None:
            names = self._default_route or self._no_route()
            self._defaults = tuple(self.transport(n) for n in names)
        return self._defaults

    def _resolve(self, names: Sequence[str], router: str) -> tuple[Transport, ...]:
        """The transports that plugin ``router`` named; an answer is checked when first seen."""
        try:
            return self._by_names[names]  # type: ignore[index]
        except (KeyError, TypeError):  # new names, or an answer that cannot be a key (a list)
            pass
        self._check_answer(names, router)
        transports = tuple(self.transport(n) for n in names)
        if isinstance(names, tuple):  # checked, and immutable: kept for the next message
            self._by_names[names] = transports
        return transports

    def _check_answer(self, names: object, router: str) -> None:
        """Refuse a router's answer that would misroute the message, naming the router."""
        said = f"plugin {router!r} answered mixpanel_route with"
        if isinstance(names, str):
            # Taken as a sequence, "direct" would name transports "d", "i", "r", ...
            raise TransportError(f"{said} the string {names!r}: answer a list of transport names")
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            # A set or an iterator has no order to send in, or is used up by the first look.
            wrong = TypeError(
                f"answered {reprlib.repr(names)}, of type {type(names).__name__}: answer a "
                "list or tuple of transport names, or None"
            )
            raise PluginError(router, "mixpanel_route", wrong) from wrong
        if not names:
            raise TransportError(
                f"{said} an empty list of transports: the message would go nowhere; answer "
                "None to leave it to the default route"
            )
        if len(set(names)) != len(names):
            raise TransportError(
                f"{said} a transport more than once ({', '.join(names)}): the message would be "
                "sent twice to it"
            )
        for name in names:
            if name not in self._specs:
                raise ConfigError(
                    f"transports.{name}: not configured; configured: {', '.join(self._specs)} "
                    f"(named by plugin {router!r} in mixpanel_route)"
                )

    def problems(self, message: Message) -> list[Problem]:
        """What every ``mixpanel_validate`` implementation finds wrong with ``message``.

        For callers that validate without sending (the forwarder, the commands); ``submit``
        does the same inline, and through this for a message an enricher changed.
        """
        found: list[Problem] = []
        name = ""
        try:
            for name, check in self._validators:  # noqa: B007 (name is read on failure)
                answer = check(message)
                if answer is not None:
                    found.extend(_verdict(answer))
        except Exception as exc:  # a validator reports problems; raising is its own failure
            raise PluginError(name, "mixpanel_validate", exc) from exc
        return found

    def reject(self, error: ValidationError, message: Message | None) -> None:
        """Apply ``[pipeline] on_invalid`` to an invalid message (or input)."""
        if self._on_invalid == "raise":
            raise error
        logger.warning("dropped an invalid message: %s", error)
        self.report(DeliveryReport(message, DeliveryStatus.DROPPED, "pipeline", str(error)))

    def _reject_as_made(self, error: ValidationError, message: Message, enrich: bool) -> None:
        """``reject`` a message refused as the caller made it, before enrichment (``enrich``:
        whether it was to be enriched). Its DROPPED report carries it as the ``redaction``
        plugin makes it, when that is enabled: the observers would otherwise be handed the
        personal data it was set to hash or drop. One that redaction cannot handle is
        reported without its message."""
        if self._on_invalid == "raise" or not (enrich and self._redactors and self.observed):
            self.reject(error, message)
        else:
            self.reject(error, self._redacted(message))

    def _redacted(self, message: Message) -> Message | None:
        """``message`` through the ``redaction`` enricher, ``None`` if that fails on it."""
        try:
            for _, redact in self._redactors:
                redacted = redact(message)
                if redacted is not None:
                    message = redacted
        except Exception as exc:
            logger.warning(
                "the dropped message's report carries no message: redaction failed on it (%s: %s)",
                type(exc).__name__,
                exc,
            )
            return None
        return message

    def report(self, report: DeliveryReport) -> None:
        """Pass a delivery report to every ``mixpanel_delivered`` implementation."""
        self._observe(report)

    @property
    def observed(self) -> bool:
        """Whether anything reads delivery reports (some ``mixpanel_delivered`` plugin)."""
        return bool(self._observers)

    @property
    def reporter(self) -> Reporter:
        """What transports report to: ``ignore_report`` when nothing reads reports, which tells
        them they may skip building reports of accepted messages (a cost per message).

        It holds the observers, not this pipeline: a transport keeps it, and through a bound
        method it would keep the pipeline, which keeps the transport. A client dropped without
        ``close()`` would then wait for the garbage collector's next full pass (which a busy
        process may make rarely) to free its transports and end their threads. A subclass
        that overrides ``report`` is given its own method, cycle and all.
        """
        if type(self).report is not Pipeline.report:
            return self.report
        return self._observe if self.observed else ignore_report

    def _no_route(self) -> tuple[str, ...]:
        raise ConfigError(
            "routes: several transports are configured and no route matched; add a catch-all "
            "[[routes]] entry or name one transport 'default'"
        )

    # -- transports -----------------------------------------------------------------------

    def transport(self, name: str) -> Transport:
        """The transport called ``name``, built on first use."""
        built = self._built.get(name)
        if built is not None:
            return built
        with self._lock:
            if name in self._built:
                return self._built[name]
            spec = self._specs.get(name)
            if spec is None:
                raise ConfigError(
                    f"transports.{name}: not configured; configured: {', '.join(self._specs)}"
                )
            if name in self._building:
                raise ConfigError(f"transports.{name}: refers to itself through other transports")
            self._building.add(name)
            try:
                transport = self._build(name, spec)
            finally:
                self._building.discard(name)
            self._built[name] = transport
            return transport

    def _after_fork(self) -> None:
        # A child forked while another thread of the parent's was building a transport
        # inherits the lock held and the name in ``_building``, by a thread it does not have:
        # its first track() would wait forever, or be told the transport refers to itself.
        # Fresh ones, whoever held them: a build the forking thread was in itself (a
        # transport's from_config forked) goes on, and its ``with`` releases the lock it took.
        self._lock = threading.RLock()
        self._building = set()

    def _build(self, name: str, spec: object) -> Transport:
        if not isinstance(spec, TransportConfig):
            return adapt_transport(spec, name, self.reporter)
        factory = load(TRANSPORT_GROUP, spec.type, f"transports.{name}.type")
        context = TransportContext(
            name,
            self.config.mixpanel,
            self.reporter,
            self.transport,
            self.config,
            observed=self.observed,
        )
        from_config = getattr(factory, "from_config", None)
        if from_config is None:
            raise ConfigError(f"transports.{name}.type: {spec.type!r} has no from_config()")
        try:
            transport: object = from_config(spec.options, context)
        except MixpanelCoreError:
            raise  # said on purpose: a ConfigError naming its key, a TransportError
        except Exception as exc:
            # Not raw at the first track(), which builds it: a configuration error, naming the
            # table (and not quoting its values: see build_failure).
            raise build_failure(
                f"transports.{name}", spec.type, exc, spec.options, self.config
            ) from exc
        if not isinstance(transport, Transport):
            # Said now, naming it, rather than as an AttributeError at its first send or flush.
            raise ConfigError(
                f"transports.{name}.type: {spec.type!r} built an object of type "
                f"{type(transport).__name__}, not a transport (send, flush, close)"
            )
        return transport

    def build_all(self) -> None:
        """Build every configured transport now (surfacing configuration errors early)."""
        for name in self.transport_names:
            self.transport(name)

    def flush(self, timeout: float | None = None) -> list[Message]:
        """Flush every transport built so far; returns the messages they still hold, with no
        outcome yet. Those rejected or failed are reported (and dead-lettered and logged by
        the transports that do), not returned; see docs/transports/index.md."""
        return self._each("flush", timeout)

    def close(self, timeout: float | None = None) -> list[Message]:
        """Close every transport built so far; returns the messages they gave up on, each also
        reported FAILED. Those that failed before are not returned (see ``flush``)."""
        return self._each("close", timeout)

    def _each(self, verb: str, timeout: float | None) -> list[Message]:
        """``verb`` (flush or close) on every transport, even after one raised.

        ``timeout`` is checked first (``bounded``): refused, no transport is touched.

        A transport that raises does not spare the others their flush, or their close (their
        threads and exit hooks, what they hold): the first error is raised once all have
        run. What the others returned is then left out of the return, and logged: a flush
        left it queued, a close reported it FAILED.
        """
        bounded(timeout, 0.0)
        left: list[Message] = []
        error: Exception | None = None
        # Outer transports first: a wrapper flushes into its inner transport, built after it.
        for name, transport in reversed(list(self._built.items())):
            try:
                left.extend(_held(getattr(transport, verb)(timeout), name, verb))
            except Exception as exc:
                if error is None:
                    error = exc
                else:
                    logger.error("%s of another transport failed too: %s", verb, exc)
        if error is not None:
            if left:
                logger.error(
                    "%d message(s) other transports could not deliver are not returned by "
                    "this %s, which raises: %s",
                    len(left),
                    verb,
                    error,
                )
            raise error
        return left


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
    candidate: object, name: str = "default", report: Reporter | None = None
) -> Transport:
    """Accept a transport, or an official-style consumer with ``send(endpoint, json)``."""
    from mixpanel_core.consumer_adapter import ConsumerTransport, is_official_consumer

    if is_official_consumer(candidate):
        return ConsumerTransport(candidate, name, report or ignore_report)
    if isinstance(candidate, Transport):
        return candidate
    raise TransportError(
        f"{type(candidate).__name__} is neither a transport (send/flush/close) nor a consumer "
        "with send(endpoint, json_message)"
    )


class Observers:
    """The ``mixpanel_delivered`` implementations, as one reporter: each gets every report, and
    one that raises is logged without keeping the others from it."""

    __slots__ = ("_observers",)

    def __init__(self, observers: Sequence[tuple[str, Callable[..., Any]]]) -> None:
        self._observers = observers

    def __call__(self, report: DeliveryReport) -> None:
        for name, observe in self._observers:
            try:
                observe(report)
            except Exception:
                logger.exception("plugin %r failed in mixpanel_delivered", name)
