"""Every kafka-python client we build, told to speak TLS to a listener that speaks plain Kafka,
is refused within its bound, naming who built it and where, instead of waiting for good.

kafka-python bounds its bootstrap but not the TLS handshake: an admin client's build and
``replay-dead-letters`` were still waiting after 45 s (the ``kafka`` transport's producer and
the forwarder have tests of their own).
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mixpanel_core.errors import TransportError
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client

pytestmark = pytest.mark.integration

PASSWORD = "hunter2-key-password"

TLS = {"security_protocol": "SSL", "ssl_check_hostname": False, "bootstrap_timeout_ms": 1000}
"""With a bootstrap bound of 1 s, a build is given up 6 s after it began."""


def _admin(servers: str, who: str) -> None:
    settings = {**TLS, "bootstrap_servers": servers, "ssl_password": PASSWORD}
    build_client(kafka_python().KafkaAdminClient, settings, "admin", settings, who)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.timeout(60)
def test_a_tls_admin_client_is_refused_in_time_and_its_build_leaves_nothing_running(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    # kafka-python's log records carry exceptions whose tracebacks hold the closed clients.
    caplog.set_level(logging.CRITICAL + 1, logger="kafka")
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    started = time.monotonic()
    with pytest.raises(TransportError) as refused:
        _admin(kafka_bootstrap, "the admin client")
    took = time.monotonic() - started
    assert 6.0 <= took < 20, took
    message = str(refused.value)
    assert message.startswith(f"the admin client cannot reach Kafka at {kafka_bootstrap}: ")
    assert "check that security_protocol matches the listener" in message
    assert PASSWORD not in message
    del refused

    # The build given up was abandoned: its sockets closed, its handshake ended with them, it
    # holds no thread (its own, kafka-python's IO thread) and no fd. Before, both threads and
    # four fds stayed for the life of the process, one set per client built.
    gc.collect()
    assert [t.name for t in set(threading.enumerate()) - threads_before] == []
    assert open_fds() - fds_before <= 1, (fds_before, open_fds())

    # So the next build by the same client is not refused for one still running: it waits its
    # own bound, as the first did.
    started = time.monotonic()
    with pytest.raises(TransportError) as again:
        _admin(kafka_bootstrap, "the admin client")
    assert time.monotonic() - started >= 6.0
    assert "an earlier build of it was given up and still waits" not in str(again.value)


@pytest.mark.timeout(60)
def test_replay_dead_letters_with_a_tls_consumer_against_a_plain_listener_exits_1_in_time(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The replay's consumer takes ``[forwarder] consumer``, as the forwarder's does."""
    consumer = ", ".join(
        ['security_protocol = "SSL"', "ssl_check_hostname = false", "bootstrap_timeout_ms = 1000"]
    )
    config = tmp_path / "replay.toml"
    config.write_text(
        "\n".join(
            [
                "[mixpanel]",
                'token = "emulator-token"',
                "[transports.bus]",
                'type = "kafka"',
                f'bootstrap_servers = "{kafka_bootstrap}"',
                'topic = "events"',
                "[forwarder]",
                'source = "bus"',
                'dead_letter_topic = "dead-letters"',
                f"consumer = {{ {consumer} }}",
                "",
            ]
        )
    )
    command = [sys.executable, "-m", "mixpanel_core.cli", "replay-dead-letters"]
    started = time.monotonic()
    done = subprocess.run(
        [*command, "--config", str(config), "--topic", "dead-letters", "--dry-run"],
        check=False,
        capture_output=True,
        text=True,
        timeout=40,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert f"replay-dead-letters cannot reach Kafka at {kafka_bootstrap}" in done.stderr
    assert "check that security_protocol matches the listener" in done.stderr
    assert took < 30, took
