"""``forwarder.metrics_port`` is a port from 0 (any free port) to 65535, as documented: a negative
one is refused naming the key when read, not left to fail when the metrics server binds. Kills
a mutant taking -1, which survived every test (they checked 65535 and 65536 only).
"""

from __future__ import annotations

import pytest

from mixpanel_core import ConfigError
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.schema import read

TABLE = {"source": "events", "on_poison": "stop"}


@pytest.mark.parametrize("port", [-1, -8080])
def test_a_negative_port_is_refused_naming_the_key(port: int) -> None:
    with pytest.raises(ConfigError) as caught:
        read(ForwarderConfig, {**TABLE, "metrics_port": port}, "forwarder")
    assert str(caught.value).startswith("forwarder.metrics_port: must be a port number from 0")


def test_0_is_taken_as_any_free_port() -> None:
    assert read(ForwarderConfig, {**TABLE, "metrics_port": 0}, "forwarder").metrics_port == 0
