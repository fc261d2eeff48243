"""Discovering transports and plugins through entry points, ours exactly like anyone's."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from mixpanel_core.errors import ConfigError

TRANSPORT_GROUP = "mixpanel_core.transports"
PLUGIN_GROUP = "mixpanel_core.plugins"


def discover(group: str) -> dict[str, EntryPoint]:
    """Installed entry points of ``group`` by name (the last installed wins on a clash)."""
    return {ep.name: ep for ep in entry_points(group=group)}


def load(group: str, name: str, path: str) -> object:
    """Load entry point ``name``; ``path`` is the config key that named it, for the error."""
    found = discover(group)
    if name not in found:
        what = "transport" if group == TRANSPORT_GROUP else "plugin"
        installed = ", ".join(sorted(found)) or "none"
        raise ConfigError(f"{path}: no {what} named {name!r} is installed; installed: {installed}")
    try:
        return found[name].load()
    except Exception as exc:  # a broken third-party package must not look like our bug
        raise ConfigError(f"{path}: {name!r} is installed but failed to import: {exc}") from exc


def distribution_of(entry_point: EntryPoint) -> str:
    """The name and version of the distribution that declares ``entry_point``."""
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else "unknown"
