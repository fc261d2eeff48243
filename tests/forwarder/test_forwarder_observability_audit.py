"""Audit of the forwarder's configuration and observability: what a mistake says, what the
counters and the metrics endpoint show."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.forwarder.config import resolve
from mixpanel_core.kafka import headers

from .conftest import ForwardingRig


@pytest.fixture
def rig_partitions() -> int:
    """One partition: the records are read in the order they were produced."""
    return 1


def _config(forwarder: dict[str, Any]) -> Any:
    return config_from_mapping(
        {
            "transports": {
                "bus": {"type": "kafka", "bootstrap_servers": ["k1:9092"], "topic": "events"}
            },
            "forwarder": {"source": "bus", "dead_letter_topic": "dlq", **forwarder},
        }
    )


def test_a_metrics_port_in_use_is_a_config_error_naming_the_key(rig: ForwardingRig) -> None:
    """Not a traceback: one line naming forwarder.metrics_port, and exit 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = rig.write_config({"metrics_port": port})

        code, stderr = rig.run_until_caught_up(config, timeout=60)

    assert code == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert re.search(rf"forwarder\.metrics_port: .*127\.0\.0\.1:{port}", stderr), stderr


def test_on_poison_stop_stops_even_when_a_dead_letter_topic_is_named(rig: ForwardingRig) -> None:
    """on_poison = "stop" is what the table says: naming a dead-letter topic too (left over from
    the default, say) must not turn the stop into a dead letter."""
    rig.produce_raw(b"{not json", [(headers.ENDPOINT, b"track")])
    config = rig.write_config({"on_poison": "stop"})  # the rig names a dead_letter_topic

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    assert "on_poison is 'stop'" in stderr
    assert all(o in (None, 0) for o in rig.committed().values())


def test_the_record_that_stops_the_forwarder_is_counted_as_consumed(rig: ForwardingRig) -> None:
    """The closing line must not say poison=1 with consumed=0: the poison and the two records
    before it on its partition were read (they stay uncommitted, and are read again later)."""
    rig.produce_events(2)
    rig.produce_raw(b"{not json", [(headers.ENDPOINT, b"track")])
    config = rig.write_config({"on_poison": "stop", "dead_letter_topic": None})
    config.write_text(config.read_text().replace("dead_letter_topic = null\n", ""))

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    [final] = re.findall(r"forwarder stopped: (.*)", stderr)
    counters = dict(re.findall(r"(\w+)=(\d+)", final))
    assert counters["poison"] == "1", final
    assert int(counters["consumed"]) == 3, final


def test_consumer_bootstrap_servers_is_refused_not_silently_replaced() -> None:
    """The brokers come from the source transport; a different list in forwarder.consumer was
    dropped without a word."""
    with pytest.raises(ConfigError, match=r"consumer\.bootstrap_servers: .*transports\.bus"):
        resolve(_config({"consumer": {"bootstrap_servers": ["other:9092"]}}))


def test_a_metrics_host_not_of_this_machine_is_a_config_error_naming_it(
    rig: ForwardingRig,
) -> None:
    config = rig.write_config({"metrics_port": 0, "metrics_host": "192.0.2.1"})  # TEST-NET-1

    code, stderr = rig.run_until_caught_up(config, timeout=60)

    assert code == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert "forwarder.metrics_host: cannot serve metrics on 192.0.2.1:0" in stderr, stderr
