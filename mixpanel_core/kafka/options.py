"""A ``kafka`` transport's TOML table (``KafkaOptions``), read by the transport and the forwarder,
and turning pass-through tables (``producer = {...}``, ``consumer = {...}``) into kwargs."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from mixpanel_core.errors import ConfigError
from mixpanel_core.frozen import EMPTY, FrozenDict
from mixpanel_core.schema import TomlDateText, check_seconds, setting


@attrs.frozen
class KafkaOptions:
    """The options of a ``type = "kafka"`` transport."""

    bootstrap_servers: str | tuple[str, ...] = setting(
        doc='`"host:port"` or a list of them: the brokers to bootstrap from. No '
        "`user:password@`: SASL credentials go in `producer`."
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
    max_unacknowledged: int = setting(
        100_000,
        doc="Most messages waiting for the broker's acknowledgement; beyond it `send()` waits up "
        "to the producer's `max_block_ms`, then raises TransportError and reports the message "
        "FAILED.",
    )
    flush_timeout: float = setting(
        30.0, doc="Seconds `flush()` waits for acknowledgements when called without a timeout."
    )
    close_timeout: float = setting(
        30.0, doc="Seconds `close()` waits for acknowledgements when called without a timeout."
    )
    exit_timeout: float = setting(
        5.0,
        doc="Seconds the close at interpreter exit waits for acknowledgements; what is left is "
        "reported FAILED. 0: report at once, without waiting.",
    )

    def __attrs_post_init__(self) -> None:
        check_transport_options(
            self.bootstrap_servers,
            self.topic,
            max_unacknowledged=self.max_unacknowledged,
            flush_timeout=self.flush_timeout,
            close_timeout=self.close_timeout,
            exit_timeout=self.exit_timeout,
        )


TOPIC_MAX_LENGTH = 249
"""The longest topic name Kafka accepts."""

_TOPIC_CHARS = re.compile(r"[a-zA-Z0-9._-]+\Z")


def check_topic_name(topic: str, key: str) -> None:
    """Raise ``ValueError`` (naming ``key``) for a topic name Kafka refuses.

    Kafka's own rule; kafka-python applies it only at the first send, which then fails every
    message far from the configuration.
    """
    if not topic:
        raise ValueError(f"{key}: must not be empty")
    if len(topic) > TOPIC_MAX_LENGTH or topic in (".", "..") or not _TOPIC_CHARS.match(topic):
        raise ValueError(
            f"{key}: must be at most {TOPIC_MAX_LENGTH} characters among ASCII letters, digits, "
            '".", "_" and "-", and not "." or ".." (Kafka\'s rule for topic names)'
        )


def check_transport_options(
    bootstrap_servers: str | Sequence[str],
    topic: str,
    *,
    max_unacknowledged: int,
    **timeouts: float,
) -> None:
    """Raise ``ValueError`` naming the first option that breaks its rule.

    ``max_unacknowledged`` must be greater than 0, each of ``timeouts`` (``flush_timeout``,
    ...) a number of seconds from 0 to ``MAX_SECONDS``. Shared by ``KafkaOptions`` and the
    transport's constructor, which is also called directly.
    """
    check_bootstrap_servers(bootstrap_servers)
    check_topic_name(topic, "topic")
    if max_unacknowledged <= 0:
        raise ValueError("max_unacknowledged: must be greater than 0")
    for key, value in timeouts.items():
        check_seconds(key, value)


TRANSPORT_OWNED_OPTIONS: Mapping[str, str] = {
    "bootstrap_servers": "set by the transport's own bootstrap_servers key",
    "key_serializer": "the transport writes the record's key itself",
    "value_serializer": "the transport writes the record's value itself",
    "transactional_id": "the transport does not use transactions (every send would fail)",
}
"""Producer options the transport decides; given in ``producer``, they would be ignored or break
every send, so they are refused with the reason. The forwarder's dead-letter producer takes the
same table, so the same options are refused there."""


def refuse_transport_owned(producer: Mapping[str, Any], path: str) -> None:
    """Raise ``ConfigError`` naming ``path.key`` for an option of ``TRANSPORT_OWNED_OPTIONS``."""
    for key, reason in TRANSPORT_OWNED_OPTIONS.items():
        if key in producer:
            raise ConfigError(f"{path}.{key}: not allowed here: {reason}")


def check_bootstrap_servers(bootstrap_servers: str | Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``bootstrap_servers`` names brokers, without credentials.

    A ``user:password@`` in a broker's address is not how Kafka authenticates, and every
    place the address is shown (kafka-python's log lines, "cannot reach Kafka at ..." errors)
    would show the password: it is refused, and not quoted here either.
    """
    servers = [bootstrap_servers] if isinstance(bootstrap_servers, str) else bootstrap_servers
    if not servers or not all(isinstance(s, str) and s.strip() for s in servers):
        raise ValueError(
            'bootstrap_servers: must name at least one broker ("host:port" or a list of them), '
            "none of them empty"
        )
    for i, server in enumerate(servers):
        key = "" if isinstance(bootstrap_servers, str) else f"[{i}]"
        if "@" in server:
            raise ValueError(
                f"bootstrap_servers{key}: credentials in a broker address are not supported "
                "(the address is not shown here, as it holds them); give them as sasl options "
                "in the transport's producer table (and the forwarder's consumer table): "
                'security_protocol = "SASL_SSL", sasl_mechanism, sasl_plain_username, '
                "sasl_plain_password"
            )
        # kafka-python takes "a,b" in one string too (an empty piece, "${B1},${B2}" with B2
        # unset, is tried and fails while the others serve), and drops a leading "PROTOCOL://".
        addresses = [piece.strip() for piece in server.split(",") if piece.strip()]
        if not addresses:
            raise ValueError(f"bootstrap_servers{key}: {server!r} names no broker (host:port)")
        for address in addresses:
            problem = _address_problem(re.sub("^.*://", "", address))
            if problem:
                raise ValueError(f"bootstrap_servers{key}: {address!r} {problem}")


def _address_problem(address: str) -> str | None:
    """What is wrong with one broker ``address`` as kafka-python reads it (``host``,
    ``host:port``, ``[IPv6]`` or ``[IPv6]:port``), or ``None``. kafka-python refused a wrong
    one only as a client was made, with an error naming the client's options table."""
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket or "]" in rest:
            return "opens a bracket for an IPv6 address and does not close it once: [IPv6]:port"
        if rest and not rest.startswith(":"):
            return "has something after the bracket of its IPv6 address other than :port"
        port = rest[1:] if rest else None
    elif address.count(":") > 1:
        return None  # a bare IPv6 address (kafka-python checks it), with the default port
    else:
        host, _, port = address.rpartition(":") if ":" in address else (address, "", None)
    if not host:
        return "names no host: host:port"
    if port is not None and not 0 < _port_number(port) < 65536:
        return f"has port {port!r}: a port is a number from 1 to 65535 (host:port)"
    return None


def _port_number(port: str) -> int:
    """``port`` as kafka-python reads it (``int``: spaces and a sign allowed), or -1."""
    try:
        return int(port)
    except ValueError:
        return -1


def client_options(table: Mapping[str, Any], known: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Plain keyword arguments for a kafka-python client; ``known`` is its ``DEFAULT_CONFIG``.

    An unknown name, or a value of another kind than kafka-python's default (a string where it
    takes a number, ...), is a ``ConfigError`` naming ``path.name`` (never the value: it may be
    a password). Tables become dicts; lists stay tuples, which kafka-python requires for
    ``api_version`` and accepts everywhere else.
    """
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}: not a kafka-python option")
    for key, value in table.items():
        problem = _kind_problem(key, value, known[key])
        if problem:
            raise ConfigError(f"{path}.{key}: {problem}")
    return {key: _plain(value) for key, value in table.items()}


CHOICES: Mapping[str, tuple[object, ...]] = {
    "acks": (0, 1, -1, "all"),  # its default is -1, but "all" is the usual spelling
    "auto_offset_reset": ("earliest", "latest", "none"),
    "security_protocol": ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
}
"""Options whose values kafka-python takes without checking them when a client is built
(an unknown ``auto_offset_reset`` quietly means ``"none"``, an unknown ``security_protocol``
plain text). ``sasl_mechanism`` is checked against kafka-python's own list
(``_sasl_mechanisms``)."""


def _sasl_mechanisms() -> tuple[object, ...] | None:
    """The SASL mechanisms kafka-python knows now: those it registers, and any registered
    since with ``kafka.net.sasl.register_sasl_mechanism``; ``None`` where it keeps no such
    list. kafka-python takes an unknown one when a client is built, and every connection
    then fails, said as "cannot reach Kafka"."""
    try:
        from kafka.net.sasl import SASL_MECHANISMS
    except ImportError:
        return None
    return tuple(SASL_MECHANISMS)


OBJECT_OPTIONS = frozenset(
    {
        "default_offset_commit_callback",
        "kafka_client",
        "key_deserializer",
        "key_serializer",
        "metric_reporters",
        "partition_assignment_strategy",
        "partitioner",
        "sasl_oauth_token_provider",
        "selector",
        "ssl_context",
        "value_deserializer",
        "value_serializer",
    }
)
"""Options that take Python objects (callables, classes, instances). A configuration file can only
give them strings, numbers or tables, which kafka-python mostly takes without a word when the
client is built (a ``partitioner = "murmur2"`` then fails every send with a TypeError)."""


def _kind_problem(key: str, value: Any, default: Any) -> str | None:
    """Why ``value`` cannot be right for an option whose default is ``default``, if it cannot.

    kafka-python checks few values when a client is built: a string where it takes a number
    would otherwise be accepted and fail at the first send, far from the configuration.
    Options without a default (``None``) or whose default is an object are not checked.
    """
    if _holds_date(value):
        # What a TOML date or time would become is anyone's guess: quoted, it is a string.
        return "takes no TOML date or time; quote the value to give a string"
    if key in OBJECT_OPTIONS:
        return (
            None
            if not _is_file_value(value)
            else "takes a Python object (a callable, class or instance), not a value from a "
            "configuration file; leave it out, or pass the object from Python"
        )
    choices = _sasl_mechanisms() if key == "sasl_mechanism" else CHOICES.get(key)
    if choices is not None:
        ok = value in choices and not isinstance(value, bool)
        return None if ok else "must be one of " + ", ".join(_toml(c) for c in choices)
    if key == "bootstrap_servers":
        ok = isinstance(value, str | tuple | list)
        return None if ok else "must be a string or a list of strings"
    if key in PROXY_OPTIONS:
        return _proxy_problem(value)
    if isinstance(default, bool):
        return None if isinstance(value, bool) else _kind("true or false", default, value)
    if isinstance(default, int | float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and key in TIMEOUT_OPTIONS and not value >= 0:  # NaN too
            return "must be 0 or more"
        return None if ok else _kind("a number", default, value)
    if isinstance(default, str):
        return None if isinstance(value, str) else _kind("a string", default, value)
    if isinstance(default, list | tuple):
        return None if isinstance(value, list | tuple) else _kind("a list", default, value)
    return None


TIMEOUT_OPTIONS = frozenset(
    {
        "bootstrap_timeout_ms",
        "consumer_timeout_ms",
        "delivery_timeout_ms",
        "fetch_max_wait_ms",
        "linger_ms",
        "max_block_ms",
        "max_poll_interval_ms",
        "reconnect_backoff_max_ms",
        "reconnect_backoff_ms",
        "request_timeout_ms",
        "retry_backoff_ms",
        "session_timeout_ms",
        "transaction_timeout_ms",
    }
)
"""kafka-python's timeouts, waits and backoffs, in milliseconds: a negative one (or NaN) is
refused. kafka-python takes most of them without a word: a negative ``max_block_ms`` (which the
transport also makes the bound of the producer's bootstrap) or ``bootstrap_timeout_ms`` made
it give up on a broker that was up at once, and a negative ``request_timeout_ms`` after 30 s,
each said as "cannot reach Kafka", which sent the operator to the network rather than to the
key (review R70 F4)."""

PROXY_OPTIONS = frozenset({"proxy_url", "socks5_proxy"})
"""The proxy's URL (``socks5_proxy``: its old name). kafka-python reads it only as it connects,
and a URL it cannot parse (a password with a ``[``) it logs whole, password and all, at ERROR
on every reconnection, while the caller only hears "cannot reach Kafka" (review R62 F1)."""


def _proxy_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a proxy URL kafka-python connects through, if it cannot; the
    value is never quoted: it may hold a password."""
    rule = "must be a URL scheme://[user:password@]host:port"
    if not isinstance(value, str):
        return f"{rule}, a string (not {type(value).__name__})"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    # A path, query or fragment is no part of a proxy's address: a password holding a / ? or #
    # ends the address there, and its first part is read as host and port (review R63 F3).
    if (
        parts is None
        or not parts.hostname
        or not port
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return (
            f"{rule} (the value is not shown, as it may hold a password; kafka-python reads "
            "the password as written, not percent-decoded, so it cannot hold [, ], /, ? or #)"
        )
    schemes = _proxy_schemes()
    if schemes is not None and parts.scheme not in schemes:
        return f"{rule}, its scheme one of " + ", ".join(schemes)
    return None


def _proxy_schemes() -> tuple[str, ...] | None:
    """The proxy schemes kafka-python connects through (``socks5``, ``socks5h``, ``http``);
    ``None`` where it keeps no such list."""
    try:
        from kafka.net.inet import KafkaNetSocket

        return tuple(sorted(KafkaNetSocket._registry))
    except (ImportError, AttributeError):
        return None


def _holds_date(value: Any) -> bool:
    # The text TOML's dates become in a raw table, which reaches here as the file gave it.
    if isinstance(value, TomlDateText):
        return True
    if isinstance(value, Mapping):
        return any(_holds_date(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_date(v) for v in value)
    return False


def _is_file_value(value: Any) -> bool:
    """Whether ``value`` is made only of what TOML (or JSON) can give: text, numbers, tables."""
    if isinstance(value, str | int | float | Mapping):  # bool is an int
        return True
    if isinstance(value, list | tuple):
        return bool(value) and all(_is_file_value(v) for v in value)
    return False


def _toml(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _kind(rule: str, default: Any, value: Any) -> str:
    return f"must be {rule} (kafka-python's default is {default!r}), not {_kind_name(value)}"


def _kind_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value
