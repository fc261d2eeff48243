"""Importing kafka-python lazily, so the core works without the ``kafka`` extra installed."""

from __future__ import annotations

import types

from mixpanel_core.errors import TransportError
from mixpanel_core.kafka import log_filter

INSTALL_HINT = 'pip install "mixpanel-core[kafka]"'


def kafka_python() -> types.ModuleType:
    """The ``kafka`` module, or a ``TransportError`` that says which extra to install.

    Every use of kafka-python in mixpanel-core goes through here, so this is where its DEBUG
    log is made safe for credentials (``log_filter``), once, before any client exists.
    """
    try:
        import kafka
    except ImportError as exc:
        raise TransportError(f"Kafka support needs kafka-python: {INSTALL_HINT}") from exc
    log_filter.install()
    module: types.ModuleType = kafka
    return module
