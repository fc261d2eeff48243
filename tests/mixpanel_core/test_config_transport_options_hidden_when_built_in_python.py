"""A ``TransportConfig`` built in Python, with a plain ``FrozenDict`` of options (as the
benchmarks and tests build them), shows its option keys only: a kafka table holds SASL and TLS
passwords, and a config is printed in logs and test failures.

A table read from a file is a ``RawTable``, which hides its values itself; this kills the mutant
dropping ``repr=keys_only`` from ``TransportConfig.options``, which survived every test.
"""

from __future__ import annotations

import attrs

from mixpanel_core.config import Config, TransportConfig
from mixpanel_core.frozen import FrozenDict

PASSWORD = "hunter2-sasl"


def test_a_transport_config_built_in_python_shows_no_option_value() -> None:
    spec = TransportConfig("kafka", FrozenDict(topic="events", sasl_plain_password=PASSWORD))
    shown = repr(spec)
    assert PASSWORD not in shown
    assert "'sasl_plain_password': ..." in shown
    assert "events" not in shown


def test_a_config_holding_it_shows_no_option_value_either() -> None:
    options = FrozenDict(sasl_plain_password=PASSWORD)
    config = attrs.evolve(Config(), transports=FrozenDict(out=TransportConfig("kafka", options)))
    assert PASSWORD not in repr(config)
    assert PASSWORD not in str(config)
