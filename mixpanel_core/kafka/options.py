"""Turning a TOML pass-through table (``producer = {...}``, ``consumer = {...}``) into kwargs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mixpanel_core.errors import ConfigError


def client_options(table: Mapping[str, Any], known: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Plain keyword arguments for a kafka-python client; ``known`` is its ``DEFAULT_CONFIG``.

    An unknown name is a ``ConfigError`` naming ``path.name``. Tables become dicts; lists stay
    tuples, which kafka-python requires for ``api_version`` and accepts everywhere else.
    """
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}: not a kafka-python option")
    return {key: _plain(value) for key, value in table.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value
