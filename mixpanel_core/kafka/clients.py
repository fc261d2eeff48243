"""Building a kafka-python client, with its refusals translated at the boundary.

``build_client`` calls ``KafkaProducer(**settings)`` (or ``KafkaConsumer``) and turns what
kafka-python raises into this library's errors: a refused option (``KafkaConfigurationError``,
``ValueError``, ``TypeError``, ``AssertionError``, ``RuntimeError`` for a codec whose library
is missing) is a ``ConfigError`` naming the table's key
path and quoting kafka-python's reason; any other ``KafkaError`` (no broker answered, SASL
refused) is a ``TransportError``. kafka-python's messages may echo option values, so a message
that contains one of the configured secrets is never shown: the error then names the keys only.
A broker address with credentials in it (``user:password@host``) is refused before kafka-python
sees it: kafka-python logs the addresses.

The build runs on a thread of its own, given up ``bootstrap_timeout_ms`` plus ``BUILD_MARGIN``
after it began (see ``bounded_build``): kafka-python does not bound a TLS handshake. A consumer
given ``api_version`` skips kafka-python's first exchange with a broker, and its first ``poll``
would then wait for the group's coordinator without bound: it asks for the cluster's topics
inside the build instead, so it too is handed back only once a broker answered.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mixpanel_core.errors import ConfigError, TransportError
from mixpanel_core.kafka.bounded_build import (
    BUILD_MARGIN,
    built_within,
    close_unused,
    shown_servers,
)
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.options import check_bootstrap_servers

DEFAULT_BOOTSTRAP_TIMEOUT_MS = 30_000
"""kafka-python's ``bootstrap_timeout_ms``, for a factory that says none of its own."""

SECRET_WORDS = ("password", "secret", "token")
"""An option whose name contains one of these holds a credential (``sasl_plain_password``,
``ssl_password``, ...)."""


def build_client(
    factory: Callable[..., Any],
    settings: Mapping[str, Any],
    path: str,
    given: Iterable[str],
    who: str,
    *,
    margin: float | None = None,
) -> Any:
    """``factory(**settings)``; ``path`` is the key path of the options table in errors,
    ``given`` the keys the user set there, ``who`` names the client in "cannot reach" errors
    (``transport 'bus'``), ``margin`` the seconds past ``bootstrap_timeout_ms`` after which
    the build is given up (default ``BUILD_MARGIN``)."""
    servers = settings.get("bootstrap_servers")
    if servers is not None:
        # Checked when the options are read; again here for addresses given otherwise
        # (replay-dead-letters --bootstrap-servers): kafka-python logs them, and so do our errors.
        try:
            check_bootstrap_servers(servers)
        except ValueError as exc:
            raise ConfigError(f"{who}: {exc}") from None
    defaults = getattr(factory, "DEFAULT_CONFIG", {})
    bootstrap_ms = settings.get(
        "bootstrap_timeout_ms", defaults.get("bootstrap_timeout_ms", DEFAULT_BOOTSTRAP_TIMEOUT_MS)
    )
    # A negative bootstrap_timeout_ms makes kafka-python give up at once, with its own reason.
    bound = max(0, bootstrap_ms) / 1000 + (BUILD_MARGIN if margin is None else margin)
    network_clients: list[Any] = []
    return built_within(
        bound,
        lambda: _translated(factory, settings, path, given, who, network_clients),
        who,
        servers,
        abandon=lambda: _close_network_clients(network_clients),
    )


def _translated(
    factory: Callable[..., Any],
    settings: Mapping[str, Any],
    path: str,
    given: Iterable[str],
    who: str,
    network_clients: list[Any],
) -> Any:
    kafka = kafka_python()
    refused = (
        kafka.errors.KafkaConfigurationError,  # a KafkaError, but no connection failed
        ValueError,
        TypeError,
        AssertionError,
        RuntimeError,  # a codec whose library is not installed
    )
    secrets = secret_values(settings)
    try:
        try:
            client = factory(**_recording_network_clients(factory, settings, network_clients))
        except BaseException:
            # A consumer that cannot bootstrap raises from its constructor with its network
            # client (an IO thread, sockets) left running: a thread and four fds per failed
            # build, for the life of a process that builds again.
            _close_network_clients(network_clients)
            raise
        if "api_version" in settings and isinstance(client, kafka.KafkaConsumer):
            try:
                client.topics()
            except BaseException:
                close_unused(client)
                raise
        return client
    except refused as exc:
        keys = ", ".join(sorted(given)) or "none given"
        reason = _quoted(exc, secrets)
        if reason is None:
            raise ConfigError(
                f"{path}: kafka-python refused the options ({keys}); its message is not shown "
                f"because it contains a password; check the values against {_name(factory)}'s "
                "documentation"
            ) from None
        # Not chained: the message says all there is to fix, and kafka-python's exception
        # (with whatever it chained) would carry the values into every traceback.
        raise ConfigError(
            f"{path}: kafka-python refused the options: {reason} (options given: {keys})"
        ) from None
    except kafka.errors.KafkaError as exc:
        reason = _quoted(exc, secrets)
        error = TransportError(
            f"{who} cannot reach Kafka at {shown_servers(settings.get('bootstrap_servers'))}: "
            f"{reason or type(exc).__name__}{_security_hint(path, given)}"
        )
        raise error from (exc if reason is not None else None)


def _close_network_clients(network_clients: list[Any]) -> None:
    """Close the network clients a build made: after it failed, or when it is given up (stuck
    in a TLS handshake, its sockets closed under it end the wait)."""
    for network_client in list(network_clients):
        with contextlib.suppress(Exception):
            network_client.close()


def _recording_network_clients(
    factory: Callable[..., Any], settings: Mapping[str, Any], made: list[Any]
) -> Mapping[str, Any]:
    """``settings`` with its ``kafka_client`` (the documented factory of the client's network
    client) wrapped to append each network client it makes to ``made``."""
    make = settings.get("kafka_client", getattr(factory, "DEFAULT_CONFIG", {}).get("kafka_client"))
    if make is None:
        return settings

    def recorded(**configs: Any) -> Any:
        network_client = make(**configs)
        made.append(network_client)
        return network_client

    return {**settings, "kafka_client": recorded}


def _security_hint(path: str, given: Iterable[str]) -> str:
    """A broker that is up but speaks another protocol, or refuses the login, fails as one no
    one answers at (a timeout, no broker available): the settings to check are named."""
    if not any(key == "security_protocol" or key.startswith(("sasl_", "ssl_")) for key in given):
        return ""
    return (
        f"; if a broker is up there, check {path}.security_protocol and the sasl_ and ssl_ "
        "settings against its listener"
    )


def secret_values(settings: Mapping[str, Any]) -> list[str]:
    """The non-empty string values of the options that hold credentials, tables included."""
    found: list[str] = []
    for key, value in settings.items():
        if isinstance(value, Mapping):
            found.extend(secret_values(value))
        elif isinstance(value, str) and value and any(word in key for word in SECRET_WORDS):
            found.append(value)
    return found


def _quoted(exc: BaseException, secrets: list[str]) -> str | None:
    """``exc``'s message as ``Type: text``, or ``None`` when it shows one of ``secrets``."""
    text = str(exc)
    name = type(exc).__name__
    # KafkaError's own str() already starts with its class name.
    quoted = text if text.startswith(name) else f"{name}: {text}" if text else name
    for secret in secrets:
        # As written, and as repr() would escape it inside a quoted value.
        if secret in quoted or repr(secret)[1:-1] in quoted:
            return None
    return quoted


def _name(factory: Callable[..., Any]) -> str:
    return getattr(factory, "__name__", "the client")
