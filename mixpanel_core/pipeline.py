"""The pipeline: validate, enrich, route, send; and reports back through the hooks.

``submit`` is the path of every message; the rest is in modules of its own: the hook
implementations compiled into plain calls when the pipeline is built (``hook_calls``), what
validators and routers answer checked (``hook_answers``), the transports built by name and
flushed and closed together (``named_transports``), a message refused before enrichment
redacted for its report (``refusal_redaction``).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import NoReturn

import pluggy

from mixpanel_core import hookspecs
from mixpanel_core.config import Config
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.errors import (
    ConfigError,
    NotJSONError,
    PartialSendError,
    PluginError,
    Problem,
    TransportError,
    ValidationError,
)
from mixpanel_core.frozen import unfrozen_part
from mixpanel_core.hook_answers import check_route, problems_answered
from mixpanel_core.hook_calls import REDACTION, Observers, compile_hook
from mixpanel_core.hook_checks import register_checked
from mixpanel_core.messages import Message
from mixpanel_core.named_transports import NamedTransports
from mixpanel_core.plugin import PluginContext, instantiate
from mixpanel_core.redactor import Redactors, told
from mixpanel_core.refusal_redaction import redacted
from mixpanel_core.registry import PLUGIN_GROUP, load
from mixpanel_core.transport import Transport, TransportContext, ignore_report

logger = logging.getLogger(__name__)


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
            register_checked(self.plugin_manager, name, plugin)
        # Each hook's implementations are put in order by compile_hook, whatever pluggy's order.
        order = {name: place for place, (name, _) in enumerate(plugins)}
        hook = self.plugin_manager.hook
        self._validators = compile_hook(hook.mixpanel_validate, ("message",), order)
        self._enrichers = compile_hook(hook.mixpanel_enrich, ("message",), order)
        self._redactors = [(n, f) for n, f in self._enrichers if n == REDACTION]
        """The ``redaction`` plugin's enricher, if enabled: also run on a message refused
        before enrichment, before its report goes to the observers (``_reject_as_made``)."""
        self._routers = compile_hook(hook.mixpanel_route, ("message", "transports"), order)
        self._observers = compile_hook(hook.mixpanel_delivered, ("report",), order)
        self._credentials = Redactors(self.config)
        """For what plugins and transports raise (see docs/errors.md)."""
        self._observe = Observers(self._observers, self._credentials)
        self._on_invalid = self.config.pipeline.on_invalid
        transports = self.config.transports if transports is None else transports
        if not transports:
            raise ConfigError("transports: none configured; add a [transports.NAME] table")
        self._transports = NamedTransports(transports, self._credentials)
        self.transport_names: tuple[str, ...] = tuple(self._transports.specs)
        # Without routes: the only transport, or the one named ``default``.
        self._default_route: tuple[str, ...] = (
            self.transport_names
            if len(self.transport_names) == 1
            else ("default",)
            if "default" in self._transports.specs
            else ()
        )
        self._by_names: dict[tuple[str, ...], tuple[Transport, ...]] = {}
        self._defaults: tuple[Transport, ...] | None = None
        self._refused = threading.local()
        """Per thread, the message a transport last refused, as they were handed it (see
        ``last_refused``)."""

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
                # answer is checked before it is read as a verdict (see verdict).
                if found is not None and (found or found.__class__ is not list):
                    problems = [*(problems or ()), *problems_answered(found)]
        except Exception as exc:
            self._plugin_failed(
                name, "mixpanel_validate", exc, report=True, message=self._as_made(message, enrich)
            )
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
        except ConfigError as exc:
            # Documented: a router finds no route for the message (see docs/hooks.md).
            self.report(DeliveryReport(message, DeliveryStatus.FAILED, "pipeline", str(exc)))
            raise
        except Exception as exc:
            self._plugin_failed(name, "mixpanel_route", exc, report=True, message=message)
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
            self._refused.message = message
            if len(transports) == 1:
                name = self._transports.name_of(transport)
                error = self._transports.safe_to_raise(exc, name, "send", message.call_secret)
                if error is exc:
                    raise
                _raise_without_context(error)
            self._send_after_refusal(message, transports, transport, exc)

    def last_refused(self) -> Message | None:
        """The message a transport refused by raising in this thread's last ``submit`` that
        raised so, as the transports were handed it (the enrichers' copy: their reports of it
        carry that object, not the one submitted); cleared as it is read. Set only as a
        transport refuses: a caller that asks must clear it before its ``submit``."""
        message: Message | None = getattr(self._refused, "message", None)
        self._refused.message = None
        return message

    def _plugin_failed(
        self,
        name: str,
        hook: str,
        error: Exception,
        *,
        report: bool = False,
        message: Message | None = None,
    ) -> NoReturn:
        """Raise the ``PluginError`` for what plugin ``name`` raised in ``hook``: its text
        redacted, and ``error`` as the cause only where it quotes no credential (``told``).
        ``report``: sending ``message`` (as a report may carry it) was what failed, and it is
        reported FAILED, as any message the pipeline does not send."""
        said, cause = told(error, self._credentials.plugin(name))
        failure = PluginError(name, hook, error, said)
        if report:
            self.report(DeliveryReport(message, DeliveryStatus.FAILED, "pipeline", str(failure)))
        if cause is None:
            _raise_without_context(failure)
        raise failure from cause

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
        problems = self.problems(message, report=True)
        if problems:
            self.reject(ValidationError(problems, message.kind), message)
            return False
        return True

    def _enrich(self, message: Message) -> Message:
        """What the enrichers make of ``message``, each given what the previous returned."""
        made = message
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
                    unfrozen = unfrozen_part(enriched.record)
                    if unfrozen is not None:
                        # Said now, naming the plugin: validation would say the message's
                        # "properties: must be an object", and drop it under on_invalid.
                        raise TypeError(
                            f"returned a message whose {unfrozen} is not frozen: build it "
                            "with with_properties, or freeze what goes into attrs.evolve "
                            "(mixpanel_core.frozen.freeze)"
                        )
                    message = enriched
        except Exception as exc:
            self._plugin_failed(
                name, "mixpanel_enrich", exc, report=True, message=self._as_made(made, True)
            )
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
        name_of = self._transports.name_of
        errors: dict[str, BaseException] = {name_of(refused): error}
        for transport in transports[transports.index(refused) + 1 :]:
            try:
                transport.send(message)
            except Exception as exc:
                errors[name_of(transport)] = exc
        taken = [name_of(t) for t in transports if name_of(t) not in errors]
        # What a transport raised may quote a credential: said redacted, and an exception
        # that prints one is not kept (see ``told``).
        said: dict[str, str] = {}
        call = message.call_secret
        for name, raised in errors.items():
            said[name], kept = told(raised, self._credentials.transport(name, call))
            if kept is None:
                errors[name] = TransportError(said[name])
        failure = PartialSendError(taken, errors, said)
        if errors[name_of(refused)] is not error:
            _raise_without_context(failure)
        raise failure from error

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
        check_route(names, router, self._transports.specs)
        transports = tuple(self.transport(n) for n in names)
        if isinstance(names, tuple):  # checked, and immutable: kept for the next message
            self._by_names[names] = transports
        return transports

    def problems(self, message: Message, *, report: bool = False) -> list[Problem]:
        """What every ``mixpanel_validate`` implementation finds wrong with ``message``.

        For callers that validate without sending (the forwarder, the commands); ``submit``
        does the same inline, and through this for a message an enricher changed, with
        ``report``: a validator that raises then has ``message`` reported FAILED, as on the
        first pass (review R72 F1).
        """
        found: list[Problem] = []
        name = ""
        try:
            for name, check in self._validators:  # noqa: B007 (name is read on failure)
                answer = check(message)
                if answer is not None:
                    found.extend(problems_answered(answer))
        except Exception as exc:  # a validator reports problems; raising is its own failure
            self._plugin_failed(name, "mixpanel_validate", exc, report=report, message=message)
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
        self.reject(
            error, message if self._on_invalid == "raise" else self._as_made(message, enrich)
        )

    def _as_made(self, message: Message, enrich: bool) -> Message | None:
        """``message``, refused as the caller made it (before enrichment, which ``enrich`` says
        it was to have), as a report of it carries it: as the ``redaction`` plugin makes it,
        when that is enabled (the observers would otherwise be handed the personal data it
        was set to hash or drop), or ``None`` when redaction fails on it."""
        if enrich and self._redactors and self.observed:
            return redacted(message, self._redactors)
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

    def check_routing(self) -> None:
        """Raise the ``ConfigError`` every message would meet: several transports, none
        named ``default``, no routes and no plugin that routes. Called by what routes
        messages (the client, a ``multiprocessing_queue`` worker's client, ``config check``,
        ``send`` and ``replay-dead-letters`` without ``--transport``); not by what only sends
        through transports by name (the forwarder, a ``multiprocessing_queue`` sender), whose
        file may be so."""
        if not self._routers and not self._default_route:
            self._no_route()

    def _no_route(self) -> tuple[str, ...]:
        raise ConfigError(
            "routes: several transports are configured and no route applies; add a catch-all "
            "[[routes]] entry or name one transport 'default'"
        )

    # -- transports -----------------------------------------------------------------------

    def transport(self, name: str, *, needed_by: str | None = None) -> Transport:
        """The transport called ``name``, built on first use. ``needed_by``: the transport that
        asks for it to hand it messages; it is flushed and closed before ``name``."""
        return self._transports.get(name, self._context, needed_by)

    def hands_to(self, user: str, used: str) -> None:
        """Transport ``user`` may hand messages to transport ``used`` (a fallback it builds
        when needed): flushed and closed before it."""
        self._transports.note_use(user, used)

    def _context(self, name: str) -> TransportContext:
        """What transport ``name`` is built with: it reports to ``reporter``, and finds the
        other transports (a wrapper's inner one, a fallback) through ``transport``, as the
        transport that needs them (flushed and closed before them)."""
        return TransportContext(
            name,
            self.config.mixpanel,
            self.reporter,
            functools.partial(self.transport, needed_by=name),
            self.config,
            observed=self.observed,
            hands_to=functools.partial(self.hands_to, name),
        )

    def build_all(self) -> None:
        """Build every configured transport now (surfacing configuration errors early)."""
        for name in self.transport_names:
            self.transport(name)

    def flush(self, timeout: float | None = None) -> list[Message]:
        """Flush every transport built so far; returns the messages they still hold, with no
        outcome yet. Those rejected or failed are reported (and dead-lettered and logged by
        the transports that do), not returned; see docs/transports/index.md."""
        return self._transports.flush(timeout)

    def close(self, timeout: float | None = None) -> list[Message]:
        """Close every transport built so far; returns the messages they gave up on, each also
        reported FAILED. Those that failed before are not returned (see ``flush``)."""
        return self._transports.close(timeout)


def _raise_without_context(error: Exception) -> NoReturn:
    """Raise ``error`` with neither cause nor context, from inside an ``except`` block: the
    exception being handled there prints a credential (``told``), and as ``__context__`` it
    stayed reachable to whatever walks the chain (a review read the secret there)."""
    try:
        raise error from None
    finally:
        error.__context__ = None
