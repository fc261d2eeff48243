"""Importing kafka-python lazily, so the core works without the ``kafka`` extra installed."""

from __future__ import annotations

import types

from mixpanel_core.errors import TransportError

INSTALL_HINT = 'pip install "mixpanel-core[kafka]"'


def kafka_python() -> types.ModuleType:
    """The ``kafka`` module, or a ``TransportError`` that says which extra to install."""
    try:
        import kafka
    except ImportError as exc:
        raise TransportError(f"Kafka support needs kafka-python: {INSTALL_HINT}") from exc
    module: types.ModuleType = kafka
    return module
