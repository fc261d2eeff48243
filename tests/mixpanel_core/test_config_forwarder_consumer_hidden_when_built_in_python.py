"""``ForwarderConfig.consumer`` holds kafka-python options, SASL and TLS passwords among them:
its repr never shows them, built in Python with a plain ``FrozenDict`` too (a table read from
a file is a ``RawTable``, which hides its values itself). Kills a mutant dropping the field's
``repr=False``, which survived every test.
"""

from __future__ import annotations

from mixpanel_core.config import config_from_mapping
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.schema import read

PASSWORD = "hunter2-consumer-sasl"


def test_a_consumer_table_built_in_python_is_not_shown() -> None:
    forwarder = ForwarderConfig(
        source="events",
        on_poison="stop",
        consumer=FrozenDict(security_protocol="SASL_SSL", sasl_plain_password=PASSWORD),
    )
    assert PASSWORD not in repr(forwarder)
    assert PASSWORD not in str(forwarder)


def test_a_consumer_table_read_from_a_file_is_not_shown() -> None:
    config = config_from_mapping(
        {"forwarder": {"source": "events", "on_poison": "stop", "consumer": {"x": PASSWORD}}},
        environ={},
    )
    assert config.forwarder is not None
    forwarder = read(ForwarderConfig, config.forwarder, "forwarder")
    assert forwarder.consumer["x"] == PASSWORD
    assert PASSWORD not in repr(forwarder)
