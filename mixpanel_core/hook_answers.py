"""What validators and routers answer, checked before the pipeline acts on it.

An answer of the wrong shape is refused here, naming what was answered, rather than read as
something else: a string as one problem (or one transport name) per character, a set as
transports in no order.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping

from mixpanel_core.errors import ConfigError, PluginError, Problem, TransportError


def problems_answered(answer: object) -> list[Problem]:
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


def check_route(names: object, router: str, configured: Mapping[str, object]) -> None:
    """Refuse a router's answer that would misroute the message, naming the router.

    ``configured``: the transports configured, by name.
    """
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
        if name not in configured:
            raise ConfigError(
                f"transports.{name}: not configured; configured: {', '.join(configured)} "
                f"(named by plugin {router!r} in mixpanel_route)"
            )
