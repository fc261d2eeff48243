"""``forwarder.batch_records`` (records per endpoint that trigger a delivery) is at least 1,
refused naming the key when read: a count below 1 is no batch size, and would be taken as one.
Kills a mutant accepting 0, which survived every test.
"""

from __future__ import annotations

import pytest

from mixpanel_core import ConfigError
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.schema import read


@pytest.mark.parametrize("count", [0, -1])
def test_a_batch_of_fewer_than_1_record_is_refused_naming_the_key(count: int) -> None:
    table = {"source": "events", "on_poison": "stop", "batch_records": count}
    with pytest.raises(ConfigError) as caught:
        read(ForwarderConfig, table, "forwarder")
    assert str(caught.value) == "forwarder.batch_records: must be at least 1"


def test_1_record_is_taken() -> None:
    table = {"source": "events", "on_poison": "stop", "batch_records": 1}
    assert read(ForwarderConfig, table, "forwarder").batch_records == 1
