"""Discovering transports and plugins through entry points, ours exactly like anyone's."""

from __future__ import annotations

import functools
import sys
from importlib.metadata import EntryPoint, entry_points

from mixpanel_core.errors import ConfigError

TRANSPORT_GROUP = "mixpanel_core.transports"
PLUGIN_GROUP = "mixpanel_core.plugins"


def discover(group: str) -> dict[str, EntryPoint]:
    """Installed entry points of ``group`` by name (the last installed wins on a clash).

    Finding them reads the metadata of every installed distribution: about 5 ms, paid by
    every pipeline built, in every process (each worker of a ``multiprocessing_queue``
    builds one). So the answer is kept for as long as ``sys.path`` stays the same, and
    ``load`` looks again before it says a name is not installed.
    """
    return dict(_scan(group, tuple(sys.path)))


@functools.lru_cache(maxsize=8)
def _scan(group: str, search_path: tuple[str, ...]) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def load(group: str, name: str, path: str) -> object:
    """Load entry point ``name``; ``path`` is the config key that named it, for the error."""
    found = discover(group)
    if name not in found:
        # Installed since the last look, perhaps (into a directory already on the path).
        _scan.cache_clear()
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
