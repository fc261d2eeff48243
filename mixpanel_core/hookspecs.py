"""The hook specifications: every way a plugin can take part in a message's journey.

Plugins implement these with ``@mixpanel_core.hookimpl``. Specs only ever gain parameters.
Each implementation may take any subset of a hook's parameters, by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from mixpanel_core.delivery import DeliveryReport
    from mixpanel_core.errors import Problem
    from mixpanel_core.messages import Message

PROJECT = "mixpanel_core"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def mixpanel_validate(message: Message) -> Iterable[Problem] | None:
    """Check ``message`` before anything else happens to it.

    Called first for every message, and once more on the final message when an enricher
    returned a new one (what is sent is what was checked). Return the problems found
    (``Problem(field, rule)``), or ``None``/an empty list when it is fine; raising is the
    plugin's failure (``PluginError``), not a verdict on the message. Every implementation
    runs and all problems are collected into one ``ValidationError``; then ``[pipeline]
    on_invalid`` decides whether the caller gets the error (``raise``) or the message is
    dropped and reported (``drop``).
    """


@hookspec
def mixpanel_enrich(message: Message) -> Message | None:
    """Return a changed copy of ``message`` (``attrs.evolve``, ``with_properties``), or ``None``.

    Called once per valid message, after validation. Implementations run one after another in
    the order of ``[plugins] enabled`` (``tryfirst``/``trylast`` move one to the front or the
    back); each receives what the previous one returned. ``None`` passes the message on as is.
    Messages are immutable: never try to change the one you receive. A new message is
    validated again before it is routed.
    """


@hookspec(firstresult=True)
def mixpanel_route(message: Message, transports: Sequence[str]) -> Sequence[str] | None:
    """Name the transports ``message`` goes to, out of the configured ``transports``.

    Called once per message, after enrichment. The first implementation that returns a
    non-``None`` answer wins; the built-in ``router`` plugin is ``trylast`` and applies the
    ``[[routes]]`` table, so any plugin of yours answers before it. Return ``None`` to let the
    next implementation decide.
    """


@hookspec
def mixpanel_delivered(report: DeliveryReport) -> None:
    """Observe what became of a message: accepted, rejected, failed after retries, or dropped.

    Called once per message and outcome by the client's pipeline, possibly from a transport's
    background thread: keep it quick and thread-safe. What it returns is ignored; an exception
    is logged and never stops delivery. The forwarder calls it once per record for its final
    outcome (Mixpanel's verdict, or the dead letter), from its main thread after each commit;
    see docs/forwarder.md.
    """
