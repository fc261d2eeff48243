"""What a plugin gets when it is built, and how an entry point becomes a registered plugin."""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

import attrs

from mixpanel_core.config import Config, keys_only
from mixpanel_core.errors import ConfigError, MixpanelCoreError
from mixpanel_core.frozen import EMPTY, FrozenDict
from mixpanel_core.secrets import Secret
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
    try:
        if isinstance(target, type) and hasattr(target, "from_config"):
            return target.from_config(context)
        if context.name in context.config.plugin_options:  # an empty table is a mistake too
            given = ", ".join(context.options) or "an empty table"
            raise ConfigError(
                f"{context.path}: plugin {context.name!r} takes no options (got {given})"
            )
        if inspect.isclass(target):
            return target()
    except MixpanelCoreError:
        raise  # said on purpose (a ConfigError naming its key, most often)
    except Exception as exc:
        raise build_failure(
            context.path, context.name, exc, context.options, context.config
        ) from exc
    return target


def build_failure(
    path: str, name: str, error: Exception, options: Mapping[str, Any], config: Config
) -> ConfigError:
    """The ``ConfigError`` for a plugin or transport whose building raised ``error``, not one of
    ours (a ``KeyError`` from ``options["key"]``, its own ``ValueError``): it names the table,
    as every configuration error does, and the command line prints it as one line.

    Its text may quote what the table held, and a table is raw (a password in it is a plain
    string: only ``read`` makes it a ``Secret``); nor is it known what the plugin did with the
    ``[mixpanel]`` credentials. So each such value in the text is replaced by its key path:
    the error still says which value was refused, and holds no secret (see docs/errors.md).
    Values of fewer than 4 characters are left, as replacing them would garble the text.
    """
    text = f"{type(error).__name__}: {error}"
    values: dict[str, str] = {}
    _values_of(options, path, values)
    for field in attrs.fields(MixpanelSettings):
        value = getattr(config.mixpanel, field.name)
        if isinstance(value, Secret):
            values.setdefault(value.reveal(), f"mixpanel.{field.name}")
    quoted = sorted((v for v in values if len(v) >= 4), key=len, reverse=True)
    if quoted:
        # One pass, the longest first: a value that holds another is replaced whole, and a key
        # path put in is not searched again.
        pattern = re.compile("|".join(map(re.escape, quoted)))
        text = pattern.sub(lambda match: f"<{values[match.group(0)]}>", text)
    return ConfigError(f"{path}: {name!r} could not be built: {text}")


def _values_of(value: object, path: str, found: dict[str, str]) -> None:
    """Each string or integer in ``value`` (a table, a list, a scalar), as text, by key path."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _values_of(item, f"{path}.{key}", found)
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            _values_of(item, f"{path}[{i}]", found)
    elif isinstance(value, str | int) and not isinstance(value, bool):
        found.setdefault(str(value), path)
