"""kafka-python's refusals may quote a value with ``repr()``, which escapes a backslash: a
password holding one then shows as its escaped spelling, not as written. That spelling is the
password all the same, so the refusal names the keys only, as for one quoted as written."""

from __future__ import annotations

import pytest

from mixpanel_core.errors import ConfigError
from mixpanel_core.transport import TransportContext
from transports.kafka import KafkaTransport

pytestmark = pytest.mark.integration

PASSWORD = "hunter\\2"  # hunter, a backslash, 2


def test_a_refusal_quoting_the_password_escaped_names_the_keys_only() -> None:
    # kafka-python reads an api_version string as dotted numbers, and int() quotes what it
    # cannot read with repr(): here that string is also the password.
    with pytest.raises(ConfigError) as raised:
        KafkaTransport.from_config(
            {
                "bootstrap_servers": "127.0.0.1:1",
                "topic": "t",
                "producer": {"api_version": PASSWORD, "sasl_plain_password": PASSWORD},
            },
            TransportContext("bus"),
        )
    text = str(raised.value)
    assert PASSWORD not in text
    assert repr(PASSWORD)[1:-1] not in text
    assert "not shown because it contains a password" in text
    assert "(api_version, sasl_plain_password)" in text
    assert raised.value.__cause__ is None
