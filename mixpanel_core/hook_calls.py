"""The hook implementations, compiled once into plain calls in the documented order.

A pipeline looks its hooks up here when it is built and keeps plain lists of functions, so a
message costs a few function calls and no plugin-manager machinery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pluggy

from mixpanel_core.delivery import DeliveryReport, note_report
from mixpanel_core.errors import ConfigError
from mixpanel_core.redactor import Redactors, redacted_traceback, told

# The pipeline's name: plugins' failures have always been logged under it, and users' logging
# settings may name it.
logger = logging.getLogger("mixpanel_core.pipeline")

HookCall = tuple[str, Callable[..., Any]]
"""One hook implementation: its plugin's name, and the function to call positionally."""

REDACTION = "redaction"
LAST_PLUGINS = (REDACTION, "router")
"""Built-in plugins whose hook implementations run after every other one of their hook,
wherever ``[plugins] enabled`` lists them and whatever the others' ``trylast``: ``redaction``
(its ``mixpanel_enrich``), so that nothing another enricher adds leaves the process unredacted;
``router`` (its ``mixpanel_route``), so that any router of yours answers before ``[[routes]]``.
"""


def compile_hook(
    hook: pluggy.HookCaller, params: tuple[str, ...], order: Mapping[str, int]
) -> list[HookCall]:
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

    calls: list[HookCall] = []
    for impl in sorted(hook.get_hookimpls(), key=place):
        if impl.hookwrapper or impl.wrapper:
            raise ConfigError(
                f"plugins.{impl.plugin_name}: wrappers are not supported for {hook.name}"
            )
        function = impl.function
        if tuple(impl.argnames) != params:
            function = _by_name(function, tuple(impl.argnames), params)
        calls.append((impl.plugin_name, function))
    return calls


def _by_name(
    function: Callable[..., Any], wanted: tuple[str, ...], params: tuple[str, ...]
) -> Callable[..., Any]:
    """Adapt an implementation that takes a subset of the hook's parameters: passed by
    position, in its own order, as pluggy passes them (a positional-only one was refused
    when passed by name)."""
    places = [params.index(name) for name in wanted]

    def call(*args: Any) -> Any:
        return function(*[args[place] for place in places])

    return call


class Observers:
    """The ``mixpanel_delivered`` implementations, as one reporter: each gets every report, and
    one that raises is logged without keeping the others from it (its traceback redacted:
    see ``told``)."""

    __slots__ = ("_credentials", "_observers")

    def __init__(self, observers: Sequence[HookCall], credentials: Redactors) -> None:
        self._observers = observers
        self._credentials = credentials

    def __call__(self, report: DeliveryReport) -> None:
        note_report(report)
        for name, observe in self._observers:
            try:
                observe(report)
            except Exception as exc:
                self._failed(name, exc)

    def _failed(self, name: str, error: Exception) -> None:
        said, kept = told(error, self._credentials.plugin(name))
        if kept is not None:
            logger.exception("plugin %r failed in mixpanel_delivered", name)
            return
        # Its traceback prints a credential: logged redacted, without the exception (a
        # handler given it would print it whole).
        logger.error(
            "plugin %r failed in mixpanel_delivered: %s\n%s",
            name,
            said,
            redacted_traceback(error, self._credentials.plugin(name)),
        )
