"""What a plugin gets when it is built, and how an entry point becomes a registered plugin."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, NoReturn

import attrs

from mixpanel_core.config import Config, keys_only
from mixpanel_core.errors import BuildFailedError, ConfigError, MixpanelCoreError, TransportError
from mixpanel_core.frozen import EMPTY, FrozenDict
from mixpanel_core.redactor import Redactor, told
from mixpanel_core.settings import MixpanelSettings


@attrs.frozen
class PluginContext:
    """A plugin's view of the configuration when it is built."""

    name: str
    """The plugin's entry-point name."""
    options: FrozenDict = attrs.field(default=EMPTY, repr=keys_only)
    """Its ``[plugins.NAME]`` table (empty when absent; its values may be secrets)."""
    config: Config = attrs.field(factory=Config)
    """The whole configuration (the router reads ``routes`` and ``transports`` from it)."""

    @property
    def settings(self) -> MixpanelSettings:
        return self.config.mixpanel

    @property
    def path(self) -> str:
        return f"plugins.{self.name}"


def instantiate(target: object, context: PluginContext) -> object:
    """Turn what an entry point names into the object to register with pluggy.

    A class with ``from_config(context)`` is built by it; another class is called with no
    arguments; a module (or an instance) is registered as it is. Options given to a plugin
    that takes none are an error, so a typo cannot be silently ignored. What is no plugin (a
    factory function, which is never called, ``None``, a string) is refused, as is a
    ``from_config`` that returns ``None``: pluggy would register it as a plugin with no hooks,
    and the enrichment or validation it was for would never run, without a word.
    """
    failure: Exception | None = None
    not_a_plugin = _not_a_plugin(target)
    if not_a_plugin is not None:
        raise ConfigError(
            f"{context.path}: the entry point names {not_a_plugin}, which is no plugin: name "
            "a class (built by its from_config(context), or called with no arguments), a "
            "module, or an instance whose methods are marked @hookimpl"
        )
    try:
        if isinstance(target, type) and hasattr(target, "from_config"):
            built = target.from_config(context)
            if built is None:
                raise ConfigError(
                    f"{context.path}: {target.__name__}.from_config returned None: it must "
                    "return the plugin (an instance, cls(...))"
                )
            return built
        if context.name in context.config.plugin_options:  # an empty table is a mistake too
            given = ", ".join(context.options) or "an empty table"
            raise ConfigError(
                f"{context.path}: plugin {context.name!r} takes no options (got {given})"
            )
        if inspect.isclass(target):
            return target()
    except Exception as exc:
        failure = exc
    if failure is not None:  # raised out of the handler: see refuse_build
        refuse_build(context.path, context.name, failure, context.options, context.config.mixpanel)
    return target


def _not_a_plugin(target: object) -> str | None:
    """What ``target`` is, when it cannot be a plugin."""
    if target is None:
        return "None"
    if inspect.isroutine(target):
        return f"the function {getattr(target, '__qualname__', target)!r} (a factory is not called)"
    # The very types: an instance of a subclass of one (a dict subclass) may be a plugin.
    if type(target) in (str, bytes, int, float, bool, list, tuple, dict, set):
        return f"a {type(target).__name__}"
    return None


def refuse_build(
    path: str,
    name: str,
    failure: Exception,
    options: Mapping[str, Any],
    settings: MixpanelSettings,
    kind: type[MixpanelCoreError] = ConfigError,
) -> NoReturn:
    """Raise the error for a plugin or transport (its table at ``path``) whose building raised
    ``failure``. Call it out of the ``except`` block, or ``failure`` would be the new error's
    ``__context__`` whatever it quotes.

    Not one of ours (a ``KeyError`` from ``options["key"]``, its own ``ValueError``): a
    ``BuildFailedError`` (a ``ConfigError``) naming the table, as every configuration error
    does, which the command line prints as one line. One of ours (a ``ConfigError`` naming
    its key, a ``TransportError``) is raised as it is. Either way what it says is redacted
    (see ``Redactor``): it may quote the table or a credential. ``failure`` is the cause
    (a traceback then shows where it was raised), unless a credential stands in what a
    traceback of it prints (its text, the exceptions it chains or groups, its notes): that
    goes whole into every log that records it. The file and line it was raised at are then
    named in the text instead, and one of ours is raised again of its kind (``kind`` for
    any but a ``BuildFailedError``, a ``ConfigError`` or a ``TransportError``).
    """
    said, cause = told(failure, Redactor(settings, options, path))
    if not isinstance(failure, MixpanelCoreError):
        raise BuildFailedError(f"{path}: {name!r} could not be built: {said}") from cause
    if cause is failure:
        raise failure  # said on purpose, quoting no credential
    kinds = (BuildFailedError, ConfigError, TransportError)
    again = next((k for k in kinds if isinstance(failure, k)), kind)
    raise again(said.removeprefix(f"{type(failure).__name__}: ")) from None
