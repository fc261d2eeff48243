"""A ``kafka`` transport's TOML table (``KafkaOptions``), read by the transport and the forwarder,
and turning pass-through tables (``producer = {...}``, ``consumer = {...}``) into kwargs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from mixpanel_core.errors import ConfigError
from mixpanel_core.frozen import EMPTY, FrozenDict
from mixpanel_core.schema import setting


@attrs.frozen
class KafkaOptions:
    """The options of a ``type = "kafka"`` transport."""

    bootstrap_servers: str | tuple[str, ...] = setting(
        doc='`"host:port"` or a list of them: the brokers to bootstrap from.'
    )
    topic: str = setting(doc="The topic every message is produced to.")
    # repr=False: this table carries SASL passwords and TLS key passwords.
    producer: FrozenDict = attrs.field(
        default=EMPTY,
        repr=False,
        metadata={
            "doc": "Any kafka-python `KafkaProducer` option (`linger_ms`, `compression_type`, "
            "`security_protocol`, `sasl_*`, `ssl_*`, ...); overrides the durable defaults "
            '`acks = "all"` and `enable_idempotence = true`.'
        },
    )
    flush_timeout: float = setting(
        30.0, doc="Seconds `flush()` waits for acknowledgements when called without a timeout."
    )
    close_timeout: float = setting(
        30.0, doc="Seconds `close()` waits for acknowledgements when called without a timeout."
    )


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
