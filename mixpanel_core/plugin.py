"""What a plugin gets when it is built, and how an entry point becomes a registered plugin."""

from __future__ import annotations

import inspect

import attrs

from mixpanel_core.config import Config, keys_only
from mixpanel_core.errors import ConfigError
from mixpanel_core.frozen import EMPTY, FrozenDict
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
    arguments; a module (or any other object) is registered as it is. Options given to a plugin
    that takes none are an error, so a typo cannot be silently ignored.
    """
    if isinstance(target, type) and hasattr(target, "from_config"):
        return target.from_config(context)
    if context.name in context.config.plugin_options:  # an empty table is a mistake too
        given = ", ".join(context.options) or "an empty table"
        raise ConfigError(f"{context.path}: plugin {context.name!r} takes no options (got {given})")
    if inspect.isclass(target):
        return target()
    return target
