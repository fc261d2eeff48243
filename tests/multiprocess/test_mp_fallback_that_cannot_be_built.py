"""A ``multiprocessing_queue`` whose sender is gone and whose fallback cannot be built reports
every message it could not deliver.

When a caller's ``send`` filled the batch (it holds the messages of earlier sends, whose callers
got no error), or came after the sender died, a fallback that could not be built made it raise
before reporting: the whole batch vanished with no report, no log line, and ``close()`` did not
return it (review R13, with a Kafka fallback and no broker).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mp_workers import TOKEN, observed_client

from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import TransportError
from mixpanel_core.testing import install_distribution

UNREACHABLE = """
from mixpanel_core.errors import TransportError


class Unreachable:
    @classmethod
    def from_config(cls, options, context):
        raise TransportError("cannot reach the broker at kafka:9092")
"""


@pytest.fixture
def unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    install_distribution(
        tmp_path,
        "acme-unreachable-fallback",
        {"mixpanel_core.transports": {"unreachable": "acme_unreachable_fallback:Unreachable"}},
        {"acme_unreachable_fallback": UNREACHABLE},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("acme_unreachable_fallback", None)


@pytest.mark.usefixtures("unreachable")
def test_every_message_is_reported_when_the_fallback_cannot_be_built(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = config_from_mapping(
        {
            "mixpanel": {"token": TOKEN},
            "transports": {
                "default": {
                    "type": "multiprocessing_queue",
                    "inner": "kept",
                    "fallback": "bus",
                    "batch_size": 5,
                    "linger": 60.0,
                    "start_method": "fork",
                    "check_interval": 0.1,
                },
                "kept": {"type": "memory"},
                "bus": {"type": "unreachable"},
            },
        }
    )
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    client.track("u", "Started", {"n": 0})  # starts the sender; held in the producer's batch
    transport.supervisor.process.kill()
    deadline = time.monotonic() + 20
    while transport.channel.sender_alive():
        assert time.monotonic() < deadline, "the sender did not die"
        time.sleep(0.02)
    refusals: dict[int, str] = {}
    with caplog.at_level(logging.ERROR, logger="mixpanel_core"):
        for n in range(1, 8):
            try:
                client.track("u", "Tick", {"n": n})
            except TransportError as exc:
                refusals[n] = str(exc)
        left = client.close(5)

    # The send that filled the batch, and each after it, was refused, saying why.
    assert sorted(refusals) == list(range(4, 8)), refusals
    assert all("cannot reach the broker" in text for text in refusals.values()), refusals
    failed = [r.message.properties["n"] for r in counter.reports if r.message is not None]
    assert sorted(failed) == list(range(8)), counter.reports  # each once, 0 to 4 included
    assert {r.status.value for r in counter.reports} == {"failed"}
    assert "message(s) reported FAILED" in caplog.text
    assert left == []  # each was reported (and refused) at its send: none is left held
