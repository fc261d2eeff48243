"""A plugin's hook implementations checked as it is registered: each must be one of our hooks,
marked ``@hookimpl``, and take only parameters its hook gives.

pluggy calls an implementation by its name and parameters alone. A misspelled name
(``mixpanel_deliverd``) or a method left without its marker is never called, and nothing says
so: a plugin counting deliveries counts nothing. A parameter its hook does not give raised
pluggy's own error, which is no ``MixpanelCoreError``: ``config check`` printed a traceback.
"""

from __future__ import annotations

import difflib
import inspect
import logging
from collections.abc import Callable
from typing import Any

import pluggy

from mixpanel_core import hookspecs
from mixpanel_core.errors import ConfigError

# The pipeline's name, as for the plugins' other lines (see ``hook_calls``).
logger = logging.getLogger("mixpanel_core.pipeline")

HOOKS: dict[str, tuple[str, ...]] = {
    name: tuple(inspect.signature(getattr(hookspecs, name)).parameters)
    for name in ("mixpanel_validate", "mixpanel_enrich", "mixpanel_route", "mixpanel_delivered")
}
"""Each hook of ours, and the parameters it gives its implementations."""


def check_hooks(name: str, plugin: object, manager: pluggy.PluginManager) -> None:
    """Raise ``ConfigError`` naming ``plugins.NAME`` unless each hook implementation of
    ``plugin`` is right, and no method named as a hook lacks its marker (one named nearly so
    is logged).

    A plugin may implement no hook at all (the ``router`` without ``[[routes]]``)."""
    for attribute in dir(plugin):
        opts = manager.parse_hookimpl_opts(plugin, attribute)
        if opts is None:
            if not callable(getattr(plugin, attribute, None)):
                continue
            if attribute in HOOKS:
                raise ConfigError(
                    f"plugins.{name}: {attribute} is not marked @hookimpl (from mixpanel_core "
                    "import hookimpl), so it would never be called"
                )
            close = _close_hook(attribute) if attribute.startswith("mixpanel_") else None
            if close is not None:
                # Perhaps a helper of the plugin's own, named so: said, not refused.
                logger.warning(
                    "plugins.%s: %s is not marked @hookimpl and names no hook: if it is meant "
                    "as %s, it is never called",
                    name,
                    attribute,
                    close,
                )
            continue
        hook = opts.get("specname") or attribute
        if hook not in HOOKS:
            raise ConfigError(f"plugins.{name}: {_unknown(attribute, hook)}")
        taken = _required_parameters(getattr(plugin, attribute))
        extra = [p for p in taken if p not in HOOKS[hook]]
        if extra:
            raise ConfigError(
                f"plugins.{name}: {attribute} takes {', '.join(map(repr, extra))}, which "
                f"{hook} does not give; it gives {', '.join(map(repr, HOOKS[hook]))}, and an "
                "implementation takes any of them, by name"
            )


def _close_hook(name: str) -> str | None:
    """The hook ``name`` is a likely misspelling of, if any."""
    close = difflib.get_close_matches(name, HOOKS, n=1, cutoff=0.85)
    return close[0] if close else None


def _unknown(attribute: str, hook: str) -> str:
    named = attribute if hook == attribute else f"{attribute} (specname {hook!r})"
    close = _close_hook(hook)
    advice = f"did you mean {close}?" if close else f"the hooks are {', '.join(HOOKS)}"
    return f"{named} is marked @hookimpl but names no hook of mixpanel-core: {advice}"


def _required_parameters(function: Callable[..., Any]) -> list[str]:
    """The parameters pluggy passes by name: those without a default, but ``self``."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: pluggy passes nothing
        return []
    return [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
