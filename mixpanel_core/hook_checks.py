"""A plugin registered with its hook implementations checked: each must be one of our hooks,
marked ``@hookimpl``, and take only parameters its hook gives.

pluggy calls an implementation by its name and parameters alone. A misspelled name
(``mixpanel_deliverd``) or a method left without its marker is never called, and nothing says
so: a plugin counting deliveries counts nothing. A parameter its hook does not give raised
pluggy's own error, which is no ``MixpanelCoreError``: ``config check`` printed a traceback.

Attributes are looked at as pluggy looks at them (``inspect.getattr_static``): a property is
never run. A pipeline is built per ``Mixpanel(token)``, often once per web request: the checks
cost a ``dir()`` and a few look-ups, and what pluggy found when it registered the plugin.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import types
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
_MARK = hookspecs.PROJECT + "_impl"
"""The attribute ``@hookimpl`` sets on what it marks: a dict of its options."""

_IMPORT_HINT = "from mixpanel_core import hookimpl"

_near_misses_said: set[tuple[object, str]] = set()
"""The (class or module, attribute) whose near-miss name was logged: once per process."""


def register_checked(manager: pluggy.PluginManager, name: str, plugin: object) -> None:
    """Register ``plugin`` as ``name``; ``ConfigError`` naming ``plugins.NAME`` when one of its
    methods is named as a hook but not marked, or is marked but is no hook of ours (but for
    pluggy's ``optionalhook``), or takes a parameter its hook does not give. A method not marked
    whose name is close to a hook's may be a helper of its own: logged once, not refused."""
    _check_unregistered(name, plugin, manager)
    # pluggy's ValueError for these names no key and quotes the plugin's repr.
    if manager.has_plugin(name):
        raise ConfigError(
            f"plugins.{name}: a plugin of that name is registered already (the router's "
            "is 'router'): give each plugin a name of its own"
        )
    if manager.is_registered(plugin):
        raise ConfigError(
            f"plugins.{name}: this very object is registered already, as "
            f"{manager.get_name(plugin)!r}: register each plugin object once"
        )
    try:
        manager.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # pluggy's own check of the parameters
        raise ConfigError(
            _wrong_parameters(name, plugin, manager) or _one_line(name, exc)
        ) from None
    for caller in manager.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            if not caller.has_spec() and not impl.optionalhook:
                manager.unregister(plugin)
                raise ConfigError(
                    f"plugins.{name}: {_unknown(impl.function.__name__, caller.name)}"
                )
            never = _never_called_right(impl.function)
            if never is not None:
                manager.unregister(plugin)
                raise ConfigError(f"plugins.{name}: {impl.function.__name__} {never}")


def _check_unregistered(name: str, plugin: object, manager: pluggy.PluginManager) -> None:
    """Refuse what ``plugin`` names ``mixpanel_...`` that pluggy will not register as a hook
    although it looks meant as one: named as a hook, or marked; log a name close to a hook's."""
    for attribute in dir(plugin):
        if not attribute.startswith("mixpanel_"):
            continue
        if manager.parse_hookimpl_opts(plugin, attribute) is not None:
            continue
        raw, on_instance = _stored(plugin, attribute)
        if not _hookable(raw, on_instance):
            if isinstance(inspect.getattr_static(raw, _MARK, None), dict):
                raise ConfigError(
                    f"plugins.{name}: {attribute} is marked @hookimpl, but pluggy does not "
                    f"call it (it is of type {type(raw).__name__}): make it a method or a "
                    "function"
                )
            if attribute in HOOKS and callable(raw):
                raise ConfigError(
                    f"plugins.{name}: {attribute} is named as a hook, but pluggy does not call "
                    f"it (it is of type {type(raw).__name__}): make it a method or a "
                    "function, marked @hookimpl"
                )
            continue
        if attribute in HOOKS:
            raise ConfigError(
                f"plugins.{name}: {attribute} is not marked @hookimpl ({_IMPORT_HINT}), so it "
                "would never be called"
            )
        close = _close_hook(attribute)
        owner = plugin if isinstance(plugin, (type, types.ModuleType)) else type(plugin)
        if close is not None and (owner, attribute) not in _near_misses_said:
            _near_misses_said.add((owner, attribute))
            logger.warning(
                "plugins.%s: %s is not marked @hookimpl and names no hook: if it is meant as "
                "%s, it is never called",
                name,
                attribute,
                close,
            )


def _stored(plugin: object, attribute: str) -> tuple[object, bool]:
    """``attribute`` of ``plugin`` as pluggy finds it, running nothing of the plugin (no
    property, no ``__getattr__``), and whether it is the instance's own value (in its
    ``__dict__`` or a slot), which is used as it is, never bound."""
    if not isinstance(plugin, (type, types.ModuleType)):
        try:
            own = object.__getattribute__(plugin, "__dict__")
        except AttributeError:  # a class with __slots__ only
            own = None
        if isinstance(own, dict) and attribute in own:
            return own[attribute], True
        slot = inspect.getattr_static(plugin, attribute, None)
        if isinstance(slot, types.MemberDescriptorType):
            try:
                return slot.__get__(plugin, type(plugin)), True
            except AttributeError:  # an empty slot
                return None, True
    return inspect.getattr_static(plugin, attribute, None), False


def _hookable(raw: object, on_instance: bool) -> bool:
    """Whether pluggy would call ``raw`` were it marked: functions and methods only (not a
    property, a ``cached_property``, a ``functools.partial``, a builtin); on an instance, as
    it is (a ``staticmethod`` object there is never unwrapped)."""
    if isinstance(raw, types.MethodType) or inspect.isfunction(raw):
        return True
    return not on_instance and isinstance(raw, (staticmethod, classmethod))


def _wrong_parameters(name: str, plugin: object, manager: pluggy.PluginManager) -> str | None:
    """What ``plugin``'s first implementation taking a parameter its hook does not give takes."""
    for attribute in dir(plugin):
        opts = manager.parse_hookimpl_opts(plugin, attribute)
        hook = opts and (opts.get("specname") or attribute)
        if not hook or hook not in HOOKS:
            continue
        extra = [
            p for p in _required_parameters(getattr(plugin, attribute)) if p not in HOOKS[hook]
        ]
        if extra:
            return (
                f"plugins.{name}: {attribute} takes {', '.join(map(repr, extra))}, which "
                f"{hook} does not give; it gives {', '.join(map(repr, HOOKS[hook]))}, and an "
                "implementation takes any of them, by name"
            )
    return None


def _never_called_right(function: Any) -> str | None:
    """Why pluggy can never call ``function`` as it means to be called, if so: a method of a
    class registered itself rather than an instance of it (pluggy drops its ``self``, and
    passes the message in its place: "missing 1 required positional argument: 'message'" at
    every call), or a parameter without a default that pluggy never passes (keyword-only:
    pluggy passes every parameter by position)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature
        return None
    if (
        parameters
        and parameters[0].name == "self"
        and not inspect.ismethod(function)
        and "." in getattr(function, "__qualname__", "")
    ):
        return (
            "is a method of a class registered as it is, not of an instance: register an "
            "instance (from_config returns cls(...), not cls; ReportCollector(), not "
            "ReportCollector)"
        )
    for parameter in parameters:
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            return (
                f"takes {parameter.name!r} keyword-only, which is never passed (hooks pass "
                "their parameters by position): make it a plain parameter"
            )
    return None


def _one_line(name: str, exc: pluggy.PluginValidationError) -> str:
    return f"plugins.{name}: {' '.join(str(exc).split())}"


def _close_hook(name: str) -> str | None:
    """The hook ``name`` is a likely misspelling of, if any."""
    close = difflib.get_close_matches(name, HOOKS, n=1, cutoff=0.85)
    return close[0] if close else None


def _unknown(attribute: str, hook: str) -> str:
    named = attribute if hook == attribute else f"{attribute} (specname {hook!r})"
    close = _close_hook(hook)
    advice = f"did you mean {close}?" if close else f"the hooks are {', '.join(HOOKS)}"
    return (
        f"{named} is marked @hookimpl but names no hook of mixpanel-core: {advice} (one meant "
        "for a later version takes @hookimpl(optionalhook=True))"
    )


def _required_parameters(function: Any) -> list[str]:
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
