"""A forwarder told to speak TLS to a listener that speaks plain Kafka exits 1 at start, with
the reason, instead of waiting for good under its supervisor.

kafka-python bounds no TLS handshake: the consumer's build (its bootstrap), the dead-letter
producer's, and, with ``api_version`` given (no bootstrap at build), the first ``poll`` waited
for the coordinator for good (each still waiting after 45 s, with a progress line every 30 s
saying all was well).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import FAST_GROUP, ForwardingRig, error_line

pytestmark = pytest.mark.integration

TLS = {"security_protocol": "SSL", "ssl_check_hostname": False, "bootstrap_timeout_ms": 1500}
"""With a bootstrap bound of 1.5 s, the build is given up 6.5 s after it began."""
TLS_TOML = '{ security_protocol = "SSL", ssl_check_hostname = false, bootstrap_timeout_ms = 1500 }'


def _assert_refused_in_time(rig: ForwardingRig, config: Path, who: str) -> None:
    """A forwarder started with ``config`` exits 1 well within its bound, its error line
    naming ``who`` and the listener to check."""
    started = time.monotonic()
    process = rig.start(config)
    _, stderr = process.communicate(timeout=40)
    took = time.monotonic() - started
    assert process.returncode == 1, stderr
    line = error_line(stderr)
    assert f"{who} cannot reach Kafka at {rig.bootstrap}" in line
    assert "check that security_protocol matches the listener" in line
    assert took < 30, took


def _config(rig: ForwardingRig, consumer: dict[str, Any]) -> Path:
    return rig.write_config({"consumer": {**FAST_GROUP, **consumer}})


@pytest.mark.timeout(60)
def test_a_tls_consumer_against_a_plain_listener_stops_the_forwarder_at_start(
    rig: ForwardingRig,
) -> None:
    _assert_refused_in_time(rig, _config(rig, TLS), "the forwarder's consumer")


@pytest.mark.timeout(60)
def test_a_tls_consumer_given_api_version_stops_the_forwarder_at_start_too(
    rig: ForwardingRig,
) -> None:
    """Given ``api_version``, kafka-python builds the consumer without speaking to a broker:
    the build asks for the topics itself, so the mismatch shows there, not in a poll that
    never returns."""
    _assert_refused_in_time(
        rig, _config(rig, {**TLS, "api_version": [3, 9]}), "the forwarder's consumer"
    )


@pytest.mark.timeout(60)
def test_a_tls_dead_letter_producer_against_a_plain_listener_stops_the_forwarder_at_start(
    rig: ForwardingRig,
) -> None:
    """The dead-letter producer takes the source transport's producer options."""
    config = rig.write_config()
    source = f'topic = "{rig.topic}"\n'
    config.write_text(config.read_text().replace(source, f"{source}producer = {TLS_TOML}\n", 1))
    _assert_refused_in_time(rig, config, "the forwarder's dead-letter producer")


@pytest.mark.timeout(90)
def test_the_consumer_given_api_version_still_forwards_over_plain_kafka(
    rig: ForwardingRig,
) -> None:
    """The topics asked for in the build are all it adds: the forwarder delivers as ever."""
    ids = rig.produce_events(3)
    code, stderr = rig.run_until_caught_up(_config(rig, {"api_version": [3, 9]}))
    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(ids)
