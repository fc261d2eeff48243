"""When kafka-python's error on building a client (not a refusal of an option: a broker that
could not be reached or refused the login) shows a configured password, the ``TransportError``
neither quotes it nor chains kafka-python's exception: a traceback, logged by whoever catches
it, prints the chained exception's message too. An error that shows no secret stays chained."""

from __future__ import annotations

import traceback
from typing import Any, NoReturn

import pytest

from mixpanel_core.errors import TransportError
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client

PASSWORD = "hunter2"
HINT = (  # a sasl_ setting was given: the login or the protocol may be what failed
    "; if a broker is up there, check transports.bus.producer.security_protocol and the sasl_ "
    "and ssl_ settings against its listener"
)


def _raising(message: str) -> Any:
    def factory(**settings: Any) -> NoReturn:
        raise kafka_python().errors.KafkaError(message)

    return factory


def _error(message: str) -> TransportError:
    settings = {"bootstrap_servers": "127.0.0.1:1", "sasl_plain_password": PASSWORD}
    with pytest.raises(TransportError) as raised:
        build_client(_raising(message), settings, "transports.bus.producer", settings, "bus")
    return raised.value


def test_an_error_showing_the_password_is_neither_quoted_nor_chained() -> None:
    error = _error(f"authentication failed for password {PASSWORD}")
    assert str(error) == "bus cannot reach Kafka at 127.0.0.1:1: KafkaError" + HINT
    assert error.__cause__ is None
    assert error.__suppress_context__
    shown = "".join(traceback.format_exception(error))
    assert PASSWORD not in shown


def test_an_error_showing_no_secret_is_quoted_and_chained() -> None:
    error = _error("no broker answered")
    assert str(error) == (
        "bus cannot reach Kafka at 127.0.0.1:1: KafkaError: no broker answered" + HINT
    )
    assert isinstance(error.__cause__, kafka_python().errors.KafkaError)
