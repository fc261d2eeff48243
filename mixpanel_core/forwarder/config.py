"""The ``[forwarder]`` table (``ForwarderConfig``) and what it resolves to (``ForwarderSetup``).

``source`` names the ``kafka`` transport whose ``bootstrap_servers``, ``topic`` and ``producer``
options (TLS, SASL) the forwarder reuses: the application and the forwarder then cannot disagree
about where the records are. ``transport`` optionally names an HTTP transport whose ``HttpOptions``
(timeouts, gzip, backoff) the forwarder's requests to Mixpanel use.

What would break at-least-once, or grow without end, is refused here with the key path: a
transport with ``strict = false``, a dead-letter topic that is the source topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from mixpanel_core.buffered_http_options import BufferedHttpOptions
from mixpanel_core.config import Config, TransportConfig
from mixpanel_core.errors import ConfigError, MixpanelCoreError
from mixpanel_core.frozen import EMPTY, FrozenDict
from mixpanel_core.ingestion import HttpOptions
from mixpanel_core.ingestion.endpoints import MAX_PORT, url_query
from mixpanel_core.kafka.options import KafkaOptions, check_topic_name, refuse_transport_owned
from mixpanel_core.schema import check_seconds, read, setting
from mixpanel_core.settings import MixpanelSettings

FORCED_CONSUMER_OPTIONS = (
    "bootstrap_servers",
    "enable_auto_commit",
    "group_id",
    "key_deserializer",
)
"""Consumer options the forwarder owns: at-least-once depends on them, and the brokers are the
source transport's (a list given here would be replaced without a word)."""

HTTP_TRANSPORT_OPTIONS: Mapping[str, type[HttpOptions]] = {
    "http": HttpOptions,
    "buffered_http": BufferedHttpOptions,
}
"""The transport types ``forwarder.transport`` may name, and the options class of their table:
the whole table is read and checked (a misspelled key, a bad value), as building the transport
would, then the forwarder takes its ``HttpOptions``."""


class ForwarderError(MixpanelCoreError):
    """The forwarder had to stop: a poison record under ``on_poison = "stop"``, or a
    dead-letter topic that would not take a record. Nothing after the cause was committed."""


def _secret_table(doc: str) -> Any:
    # repr=False: these tables carry SASL passwords and TLS key passwords.
    return attrs.field(default=EMPTY, repr=False, metadata={"doc": doc})


@attrs.frozen
class ForwarderConfig:
    """The ``[forwarder]`` table."""

    source: str = setting(
        doc="Name of the `kafka` transport whose `bootstrap_servers`, `topic` and `producer` "
        "options (TLS, SASL) the forwarder reads and dead-letters with."
    )
    transport: str | None = setting(
        None,
        doc="Name of an `http` or `buffered_http` transport whose HTTP options (timeouts, "
        "gzip, backoff, batch limits) the forwarder's requests use; default: the defaults. "
        "It may not set `strict = false`.",
    )
    group_id: str = setting("mixpanel-forwarder", doc="The Kafka consumer group.")
    dead_letter_topic: str | None = setting(
        None,
        doc="Topic for poison records and records Mixpanel rejects; required unless "
        '`on_poison = "stop"`, which stops instead and never uses it. Not the source\'s '
        "topic (each dead letter would be read and dead-lettered again).",
    )
    on_poison: Literal["dead_letter", "stop"] = setting(
        "dead_letter",
        doc="What a record that cannot be delivered (poison, or rejected by Mixpanel) does: "
        "`dead_letter` it and carry on, or `stop` the forwarder (exit 1) without committing it.",
    )
    consumer: FrozenDict = _secret_table(
        "Any kafka-python `KafkaConsumer` option (`session_timeout_ms`, `max_poll_records`, "
        "`security_protocol`, ...), except `bootstrap_servers` (the source's), "
        "`enable_auto_commit`, `group_id` and `key_deserializer`."
    )
    batch_records: int = setting(
        2000, doc="Records per endpoint that trigger a delivery at once (up to one request)."
    )
    linger: float = setting(
        0.5, doc="Seconds a record may wait for batch-mates before its endpoint is delivered."
    )
    shutdown_deadline: float = setting(
        30.0,
        doc="Seconds SIGTERM/SIGINT leave for delivering what is buffered before exiting, "
        'counted from the signal (under `on_poison = "stop"`, from the record that stops it); '
        "a request still unanswered then is abandoned, and so is a wait for the dead-letter "
        "topic.",
    )
    metrics_port: int | None = setting(
        None,
        doc="Serve Prometheus metrics on this port, 0 to 65535 (0: any free port); default: off.",
    )
    metrics_host: str = setting(
        "127.0.0.1",
        doc="Address the metrics endpoint binds: an IPv4 or IPv6 address (`0.0.0.0` or `::` "
        "for every interface, `::1` for IPv6 loopback) or a host name.",
    )
    log_interval: float = setting(
        30.0, doc="Seconds between log lines with the counters and the lag (0: never)."
    )
    idle_warning: float = setting(
        60.0,
        doc="While the forwarder holds no partition, seconds between its checks of the "
        "group's commits: when they did not move since the previous check while records wait "
        "past them, it logs a WARNING (no member is delivering) (0: never check).",
    )

    def __attrs_post_init__(self) -> None:
        if self.on_poison == "dead_letter" and not self.dead_letter_topic:
            raise ValueError(
                'dead_letter_topic: required when on_poison = "dead_letter" (the default); '
                'name a topic, or set on_poison = "stop"'
            )
        if self.dead_letter_topic:
            check_topic_name(self.dead_letter_topic, "dead_letter_topic")
        for name in ("batch_records",):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")
        for name in ("linger", "shutdown_deadline", "log_interval", "idle_warning"):
            check_seconds(name, getattr(self, name))
        if self.metrics_port is not None and not 0 <= self.metrics_port <= MAX_PORT:
            raise ValueError(
                f"metrics_port: must be a port number from 0 to {MAX_PORT} (0: any free "
                f"port), not {self.metrics_port}"
            )
        forced = sorted(set(self.consumer) & set(FORCED_CONSUMER_OPTIONS))
        if forced[:1] == ["bootstrap_servers"]:
            raise ValueError(
                "consumer.bootstrap_servers: set by the forwarder from the source transport "
                f"(transports.{self.source}.bootstrap_servers), so that it reads where the "
                "records are written"
            )
        if forced:
            raise ValueError(
                f"consumer.{forced[0]}: set by the forwarder (auto-commit stays off; use "
                "group_id in [forwarder])"
            )


@attrs.frozen
class ForwarderSetup:
    """Everything the forwarder needs, resolved from the whole configuration."""

    forwarder: ForwarderConfig
    settings: MixpanelSettings
    http: HttpOptions
    bootstrap_servers: str | tuple[str, ...]
    topic: str
    producer: FrozenDict = attrs.field(repr=False)


def resolve(config: Config) -> ForwarderSetup:
    """Read ``[forwarder]`` and the transports it names; errors name the key path."""
    if config.forwarder is None:
        raise ConfigError(f"forwarder: no [forwarder] table in {config.source}")
    forwarder = read(ForwarderConfig, config.forwarder, "forwarder")
    source = _transport(config, forwarder.source, "forwarder.source")
    if source.type != "kafka":
        raise ConfigError(
            f"forwarder.source: transport {forwarder.source!r} is of type {source.type!r}; "
            "it must be a kafka transport"
        )
    kafka = read(KafkaOptions, source.options, f"transports.{forwarder.source}")
    # Its dead-letter producer takes this table too: what the transport refuses is refused here.
    refuse_transport_owned(kafka.producer, f"transports.{forwarder.source}.producer")
    if forwarder.dead_letter_topic == kafka.topic:
        raise ConfigError(
            f"forwarder.dead_letter_topic: {kafka.topic!r} is the topic the forwarder reads "
            f"(transports.{forwarder.source}.topic): each dead letter would be read again and "
            "dead-lettered again, without end; name another topic"
        )
    http = HttpOptions()
    if forwarder.transport is not None:
        http = _http_options(config, forwarder.transport)
    _check_import_url(config.mixpanel)
    return ForwarderSetup(
        forwarder, config.mixpanel, http, kafka.bootstrap_servers, kafka.topic, kafka.producer
    )


def _transport(config: Config, name: str, path: str) -> TransportConfig:
    spec = config.transports.get(name)
    if not isinstance(spec, TransportConfig):
        configured = ", ".join(config.transports) or "none"
        raise ConfigError(f"{path}: no transport named {name!r}; configured: {configured}")
    return spec


def _http_options(config: Config, name: str) -> HttpOptions:
    """The ``HttpOptions`` of the transport ``forwarder.transport`` names, checked."""
    target = _transport(config, name, "forwarder.transport")
    options_class = HTTP_TRANSPORT_OPTIONS.get(target.type)
    if options_class is None:
        raise ConfigError(
            f"forwarder.transport: transport {name!r} is of type {target.type!r}; it must be "
            "an http or buffered_http transport (the forwarder reads its HTTP options)"
        )
    options = read(options_class, target.options, f"transports.{name}")
    http = options.http() if isinstance(options, BufferedHttpOptions) else options
    if not http.strict:
        # Without strict=1 Mixpanel drops invalid /import records and answers "imported N of
        # M" without naming them: the batch can be neither settled nor dead-lettered, so the
        # forwarder would resend it forever and never commit its partition.
        raise ConfigError(
            f"transports.{name}.strict: must stay true for the forwarder "
            f"(forwarder.transport = {name!r}): without strict=1 Mixpanel does not say which "
            "/import records it dropped, so their partition could never be committed; remove "
            "it, or give the forwarder another transport"
        )
    return http


def _check_import_url(settings: MixpanelSettings) -> None:
    """Refuse a ``urls.import`` whose query says ``strict`` other than 1: it is sent instead of
    the client's ``strict=1`` (see ``Poster.post``), with the effect of ``strict = false``
    (review R63 F2). The URL is not quoted: its query may hold a credential."""
    import_url = settings.urls.get("import")
    values = url_query(import_url).get("strict") if import_url is not None else None
    if values is not None and any(value != "1" for value in values):
        raise ConfigError(
            "mixpanel.urls.import: its query sets strict to something other than 1, which the "
            "forwarder cannot work with: without strict=1 Mixpanel does not say which /import "
            "records it dropped, so their partition could never be committed; take strict out "
            "of the query"
        )
