"""The client's ``flush(timeout)`` and ``close(timeout)`` do not wait for a transport another
thread is building: a ``kafka`` transport whose broker does not answer bootstraps for its
``max_block_ms`` under the build lock, and a flush that took that lock to list the transports
(to order them) returned after the build, seconds past its bound."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import TransportError
from mixpanel_core.pipeline import Pipeline

pytestmark = pytest.mark.integration

BUILD_BLOCKS = 8.0
"""Seconds the kafka transport's bootstrap waits for the silent broker."""
BOUND = 3.0
"""A flush given 0.5 s returns well within this, on a loaded machine too."""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nobody listens once closed


@pytest.mark.parametrize("verb", ["flush", "close"])
def test_a_bounded_flush_or_close_does_not_wait_for_another_threads_build(verb: str) -> None:
    config = config_from_mapping(
        {
            "mixpanel": {"token": "t"},
            "transports": {
                "fast": {"type": "memory"},
                "profiles": {
                    "type": "kafka",
                    "bootstrap_servers": f"127.0.0.1:{closed_port()}",
                    "topic": "mixpanel",
                    "producer": {"max_block_ms": int(BUILD_BLOCKS * 1000)},
                },
            },
            "routes": [{"transport": "profiles", "kinds": ["people"]}, {"transport": "fast"}],
        }
    )
    pipeline = Pipeline.from_config(config)
    client = Mixpanel("t", config=config, pipeline=pipeline)
    client.track("u-1", "Built fast")
    raised: list[BaseException] = []

    def build() -> None:
        try:
            client.people_set("u-1", {"plan": "pro"})
        except TransportError as exc:  # the broker never answers: said, once the build ends
            raised.append(exc)

    builder = threading.Thread(target=build)
    builder.start()
    deadline = time.monotonic() + 10
    while "profiles" not in pipeline._transports._building and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "profiles" in pipeline._transports._building, "the build is under way"

    started = time.monotonic()
    left = getattr(client, verb)(timeout=0.5)
    took = time.monotonic() - started

    builder.join(BUILD_BLOCKS + 20)
    assert [type(exc) for exc in raised] == [TransportError]
    assert left == []
    assert took < BOUND, f"{verb}(timeout=0.5) waited {took:.1f}s for another thread's build"
