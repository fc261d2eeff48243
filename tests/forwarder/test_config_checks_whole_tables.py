"""``forward`` checks the whole of the tables it reads, as building those transports would.

Before: of the HTTP transport ``forwarder.transport`` names, only the ``HttpOptions`` keys were
read, so a misspelled key (``gzipp``) or a bad buffering value started without a word (and sent
uncompressed); and the source's ``producer`` table went to the dead-letter producer with
options the ``kafka`` transport refuses (``transactional_id``: every dead letter then failed and
the forwarder stopped at the first one)."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.forwarder.config import resolve


def _setup(direct: dict[str, Any], producer: dict[str, Any] | None = None) -> Any:
    bus: dict[str, Any] = {"type": "kafka", "bootstrap_servers": "127.0.0.1:1", "topic": "t"}
    if producer is not None:
        bus["producer"] = producer
    return resolve(
        config_from_mapping(
            {
                "transports": {"bus": bus, "direct": direct},
                "forwarder": {"source": "bus", "transport": "direct", "dead_letter_topic": "d"},
            }
        )
    )


@pytest.mark.parametrize("kind", ["http", "buffered_http"])
def test_a_misspelled_key_of_the_http_transport_is_refused_naming_it(kind: str) -> None:
    with pytest.raises(ConfigError, match=r"^transports\.direct\.gzipp: unknown key"):
        _setup({"type": kind, "gzipp": True})


def test_a_buffering_key_of_an_http_transport_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^transports\.direct\.linger: unknown key"):
        _setup({"type": "http", "linger": 1.0})


def test_a_bad_buffering_value_of_a_buffered_http_transport_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^transports\.direct.linger: "):
        _setup({"type": "buffered_http", "linger": -5})


def test_the_http_options_of_a_buffered_http_transport_are_taken_with_its_buffering_keys() -> None:
    setup = _setup({"type": "buffered_http", "gzip": True, "read_timeout": 3.5, "linger": 0.5})
    assert setup.http.gzip is True
    assert setup.http.read_timeout == 3.5
    assert type(setup.http).__name__ == "HttpOptions"


@pytest.mark.parametrize("key", ["transactional_id", "bootstrap_servers", "value_serializer"])
def test_a_producer_option_the_kafka_transport_refuses_is_refused_by_the_forwarder(
    key: str,
) -> None:
    with pytest.raises(
        ConfigError, match=rf"^transports\.bus\.producer\.{key}: not allowed here: "
    ):
        _setup({"type": "http"}, producer={key: "x"})
