"""Loading ``mixpanel.toml``: environment interpolation and the top-level sections.

Each section is read by ``schema.read`` into a frozen class; transports, plugins and the
forwarder read their own tables the same way when they are built, so every unknown key or
wrong type fails with its full key path before anything is sent.
"""

from __future__ import annotations

import datetime
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from mixpanel_core.errors import ConfigError
from mixpanel_core.frozen import EMPTY, FrozenDict
from mixpanel_core.ingestion.endpoints import endpoint_urls
from mixpanel_core.messages import ENDPOINTS, KINDS
from mixpanel_core.schema import TomlDateText, freeze_setting, read, setting, toml_type
from mixpanel_core.settings import MixpanelSettings

CONFIG_ENV_VAR = "MIXPANEL_CORE_CONFIG"
DEFAULT_CONFIG_PATH = "mixpanel.toml"
ALWAYS_ENABLED_PLUGINS = ("router",)
DEFAULT_PLUGINS = ("mixpanel_limits",)

# At each `$`, in this order: the `$$` escape, a well-formed ${VAR}, then what only looks like
# one (a closed ${...} whose name is not a name, or a `${` never closed), which is an error:
# sent on as it stands, it would reach Mixpanel as a token or a secret.
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bad>\$\{[^}]*\})|(?P<open>\$\{)"
)


@attrs.frozen
class PipelineSettings:
    """The ``[pipeline]`` table."""

    on_invalid: Literal["raise", "drop"] = setting(
        "raise",
        doc="What an invalid message does: `raise` a ValidationError in the caller, or "
        "`drop` it, log it and report it as dropped.",
    )


@attrs.frozen
class RouteConfig:
    """One ``[[routes]]`` entry: which messages go to which transports."""

    transport: str | tuple[str, ...] = setting(
        doc="The transport name (or a list of names) that matching messages go to."
    )
    kinds: tuple[str, ...] = setting(
        (), doc=f"Message kinds this route takes ({', '.join(KINDS)}); empty means all."
    )
    endpoints: tuple[str, ...] = setting(
        (), doc=f"Endpoints this route takes ({', '.join(ENDPOINTS)}); empty means all."
    )

    @property
    def transports(self) -> tuple[str, ...]:
        return (self.transport,) if isinstance(self.transport, str) else self.transport

    def matches(self, kind: str, endpoint: str) -> bool:
        return (not self.kinds or kind in self.kinds) and (
            not self.endpoints or endpoint in self.endpoints
        )


def keys_only(table: FrozenDict | None) -> str:
    """A raw table's repr without its values: they may hold passwords (SASL, TLS, a salt)."""
    if table is None:
        return "None"
    return "{" + ", ".join(f"{key!r}: ..." for key in table) + "}"


class RawTable(FrozenDict):
    """A table of the file as it was read, before its reader checks it (a transport's, a
    plugin's, ``[forwarder]``): shown by its keys only, wherever it is printed on its own.

    Its values are frozen JSON values, as in any ``FrozenDict`` (``freeze`` takes it as it is);
    a TOML date, time or date-time is its text, marked as ``TomlDateText`` so that the key's
    reader can refuse it where it takes a string.

    A subclass rather than a change to ``FrozenDict``, whose plain repr messages keep, and
    whose every instance is built on the hot path: this costs only at load.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return keys_only(self)

    def __reduce__(self) -> tuple[type[RawTable], tuple[dict[str, Any]]]:
        # FrozenDict's would bring a plain FrozenDict back, showing the values again.
        return (RawTable, (dict(self),))


@attrs.frozen
class TransportConfig:
    """One ``[transports.NAME]`` table: the entry-point ``type`` and its own options."""

    type: str
    options: FrozenDict = attrs.field(default=EMPTY, repr=keys_only)


@attrs.frozen
class Config:
    """The whole file, with each section checked."""

    mixpanel: MixpanelSettings = attrs.field(factory=MixpanelSettings)
    pipeline: PipelineSettings = attrs.field(factory=PipelineSettings)
    plugins: tuple[str, ...] = DEFAULT_PLUGINS + ALWAYS_ENABLED_PLUGINS
    """Enabled plugin names, in the order their hooks run."""
    plugin_options: FrozenDict = attrs.field(default=EMPTY, repr=keys_only)
    """``[plugins.NAME]`` tables by plugin name."""
    transports: FrozenDict = EMPTY
    """``TransportConfig`` by transport name."""
    routes: tuple[RouteConfig, ...] = ()
    forwarder: FrozenDict | None = attrs.field(default=None, repr=keys_only)
    """The raw ``[forwarder]`` table; the forwarder reads it when it starts."""
    source: str = "<defaults>"
    """Where the configuration came from, for messages."""


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The file to read: ``path``, else ``$MIXPANEL_CORE_CONFIG``, else ``./mixpanel.toml``."""
    return Path(path or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read and check a TOML file (see ``config_path`` for which one)."""
    file = config_path(path)
    try:
        with file.open("rb") as handle:
            text = handle.read().decode()
        # The byte order mark some Windows editors begin a file with is not TOML: it was
        # refused as "Invalid statement (at line 1, column 1)", where nothing shows.
        data = tomllib.loads(text.removeprefix("\ufeff"))
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {str(file)!r} does not exist") from exc
    except OSError as exc:
        # A directory, a file without read permission: one line, not a traceback.
        raise ConfigError(
            f"configuration file {str(file)!r} cannot be read: {exc.strerror or exc}; "
            "give the path of a TOML file"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file}: not valid TOML: TOML files are UTF-8 text, and byte {exc.start} is not "
            "UTF-8 (is it the right file?)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    return config_from_mapping(data, environ, source=str(file))


def config_from_mapping(
    data: Mapping[str, Any], environ: Mapping[str, str] | None = None, source: str = "<mapping>"
) -> Config:
    """Check an already parsed TOML document (``${VAR}`` still to be expanded)."""
    data = interpolate(data, os.environ if environ is None else environ, "")
    known = ("mixpanel", "pipeline", "plugins", "transports", "routes", "forwarder")
    for key in data:
        if key not in known:
            raise ConfigError(f"{key}: unknown section; the sections are: {', '.join(known)}")
    plugins, plugin_options = _read_plugins(data.get("plugins", {}))
    transports = _read_transports(data.get("transports", {}))
    routes = _read_routes(data.get("routes", []), transports)
    forwarder = data.get("forwarder")
    if forwarder is not None and not isinstance(forwarder, Mapping):
        raise ConfigError("forwarder: must be a table")
    mixpanel = read(MixpanelSettings, data.get("mixpanel", {}), "mixpanel")
    # Every URL checked now (scheme, port, no query), not when a transport is first built.
    endpoint_urls(mixpanel)
    return Config(
        mixpanel=mixpanel,
        pipeline=read(PipelineSettings, data.get("pipeline", {}), "pipeline"),
        plugins=plugins,
        plugin_options=plugin_options,
        transports=transports,
        routes=routes,
        forwarder=None if forwarder is None else _frozen_table(forwarder, "forwarder"),
        source=source,
    )


def interpolate(value: Any, environ: Mapping[str, str], path: str) -> Any:
    """Expand ``${VAR}`` in every string (``$$`` is a literal ``$``); a missing VAR is an error,
    and so is a ``${`` that starts no well-formed ``${VAR}``."""
    if isinstance(value, str):
        if "$" not in value:
            return value

        def substitute(match: re.Match[str]) -> str:
            name = match.group("name")
            if name is None:
                _refuse_reference(match, path)
                return "$"
            if name not in environ:
                raise ConfigError(
                    f"{path or 'value'}: environment variable {name} is not set "
                    "(an empty value must be set explicitly)"
                )
            return environ[name]

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, Mapping):
        return {k: interpolate(v, environ, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _refuse_reference(match: re.Match[str], path: str) -> None:
    """Raise ``ConfigError`` for a ``${`` that starts no well-formed ``${VAR}`` (``$$`` passes).

    The error names the ``${`` by its position in the value and quotes nothing of it: what
    follows may be a secret (``"q${Zx9!kP2}"`` is a password, not a reference), and a
    ``${...}`` quoted whole would show most of it.
    """
    where = path or "value"
    at = f"the ${{ at character {match.start() + 1} of the value"
    if match.group("bad") is not None:
        raise ConfigError(
            f"{where}: {at} does not start a ${{VAR}} reference (VAR: letters, digits and _, "
            "not starting with a digit); write $${ for a literal ${"
        )
    if match.group("open") is not None:
        raise ConfigError(
            f"{where}: {at} has no closing }}: write ${{VAR}}, or $${{ for a literal ${{"
        )


def _frozen_table(table: Mapping[str, Any], path: str) -> RawTable:
    """A raw table, frozen, its tables too; TOML's ``nan`` and ``inf`` are refused here."""
    return RawTable({key: _frozen_value(value, f"{path}.{key}") for key, value in table.items()})


def _frozen_value(value: object, path: str) -> Any:
    if isinstance(value, Mapping):
        return _frozen_table(value, path)
    if isinstance(value, list | tuple):
        return tuple(_frozen_value(item, f"{path}[{i}]") for i, item in enumerate(value))
    if isinstance(value, datetime.date | datetime.time):
        # Text, as JSON can carry it (a plugin may json.dumps its options), but marked: the
        # key's reader refuses it where it takes a string, rather than take it as one.
        return TomlDateText.of(value)
    return freeze_setting(value, path)


def _read_plugins(table: object) -> tuple[tuple[str, ...], FrozenDict]:
    if not isinstance(table, Mapping):
        raise ConfigError("plugins: must be a table")
    enabled = table.get("enabled", list(DEFAULT_PLUGINS))
    if not isinstance(enabled, list) or not all(isinstance(n, str) for n in enabled):
        raise ConfigError("plugins.enabled: must be a list of plugin names")
    names = tuple(dict.fromkeys([*enabled, *ALWAYS_ENABLED_PLUGINS]))
    options = {}
    for key, value in table.items():
        if key == "enabled":
            continue
        if not isinstance(value, Mapping):
            if key in names:
                raise ConfigError(f"plugins.{key}: must be a table of the plugin's options")
            # Not a plugin's table: a key of [plugins] itself, misspelled ("enable").
            raise ConfigError(
                f"plugins.{key}: unknown key; [plugins] takes enabled (a list of plugin "
                "names) and a [plugins.NAME] table of options for each plugin enabled"
            )
        if key not in names:
            raise ConfigError(
                f"plugins.{key}: options for a plugin that is not enabled; add {key!r} to "
                "plugins.enabled or remove the table"
            )
        options[key] = _frozen_table(value, f"plugins.{key}")
    return names, RawTable(options)


def _read_transports(table: object) -> FrozenDict:
    if not isinstance(table, Mapping):
        raise ConfigError("transports: must be a table of [transports.NAME] tables")
    out = {}
    for name, value in table.items():
        if not isinstance(value, Mapping):
            raise ConfigError(f"transports.{name}: must be a table")
        kind = value.get("type")
        if kind is None:
            raise ConfigError(f"transports.{name}.type: required; names an installed transport")
        if not isinstance(kind, str):
            raise ConfigError(
                f"transports.{name}.type: must be a string naming an installed transport, "
                f"not {toml_type(kind)}"
            )
        options = {k: v for k, v in value.items() if k != "type"}
        out[name] = TransportConfig(kind, _frozen_table(options, f"transports.{name}"))
    return FrozenDict(out)


def _read_routes(
    value: object, transports: Mapping[str, TransportConfig]
) -> tuple[RouteConfig, ...]:
    if not isinstance(value, list):
        raise ConfigError("routes: must be an array of tables ([[routes]])")
    routes = tuple(read(RouteConfig, item, f"routes[{i}]") for i, item in enumerate(value))
    for i, route in enumerate(routes):
        for kind in route.kinds:
            if kind not in KINDS:
                raise ConfigError(f"routes[{i}].kinds: {kind!r} is not one of {', '.join(KINDS)}")
        for endpoint in route.endpoints:
            if endpoint not in ENDPOINTS:
                raise ConfigError(
                    f"routes[{i}].endpoints: {endpoint!r} is not one of {', '.join(ENDPOINTS)}"
                )
        if not route.transports:
            raise ConfigError(
                f"routes[{i}].transport: must name at least one transport (matching messages "
                "would otherwise go nowhere)"
            )
        if len(set(route.transports)) != len(route.transports):
            # A name given twice would send each matching message twice to that transport.
            raise ConfigError(
                f"routes[{i}].transport: names a transport more than once "
                f"({', '.join(route.transports)}); each would get every message twice"
            )
        for name in route.transports:
            if name not in transports:
                raise ConfigError(
                    f"routes[{i}].transport: no transport named {name!r}; configured: "
                    f"{', '.join(transports) or 'none'}"
                )
    return routes
