"""With no plugin reading reports (``forward_reports`` off, the usual case), a sender that
dies after a flush confirmed everything it took is not said to have lost those records
(review R44 F1).

The owner counted every record the sender had ever taken as of unknown outcome: it logged
them lost and the next ``flush()`` raised ``TransportError`` saying so, though an earlier
``flush()`` had returned ``[]`` for them and Mixpanel had them. A user resending them applies
a profile's ``$add`` twice.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import pytest
from mp_workers import TOKEN, config_for

from mixpanel_core import Mixpanel
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.errors import TransportError

pytestmark = pytest.mark.integration


def kill_sender(transport: Any) -> None:
    supervisor = transport.supervisor
    os.kill(supervisor.process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while supervisor.failure is None:  # the owner noticed the death
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_records_a_flush_confirmed_are_not_counted_lost_when_the_sender_dies(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    client = Mixpanel(TOKEN, config=config_for(emulator.base_url))
    transport: Any = client.pipeline.transport("default")
    assert transport.channel.options.forward_reports is False  # no plugin reads reports
    for n in range(3):
        client.people_increment(f"user-{n}", {"visits": 1})
    assert client.flush(timeout=30) == []
    assert len(emulator.client.records("engage")) == 3

    with caplog.at_level(logging.ERROR):
        kill_sender(transport)
    assert "died (exit code -9)" in caplog.text
    assert "records it took is unknown" not in caplog.text
    assert "nothing it took or was queued is without an outcome" in caplog.text
    assert transport.supervisor.unaccounted == 0
    assert client.flush(timeout=30) == []  # nothing to say: all three have their outcome
    client.close(timeout=30)


def test_records_taken_after_the_last_complete_flush_are_still_told_unknown(
    emulator: EmulatorProcess,
) -> None:
    """The count is what the sender took since that flush, not what it ever took."""
    client = Mixpanel(TOKEN, config=config_for(emulator.base_url))
    transport: Any = client.pipeline.transport("default")
    for n in range(3):
        client.people_increment(f"user-{n}", {"visits": 1})
    assert client.flush(timeout=30) == []
    emulator.stall()  # the next two are taken and held in a request that gets no answer
    try:
        for n in range(3, 5):
            client.people_increment(f"user-{n}", {"visits": 1})
        deadline = time.monotonic() + 30
        while transport.channel.taken.value < 5:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        kill_sender(transport)
    finally:
        emulator.release()
    assert transport.supervisor.unaccounted is None
    with pytest.raises(TransportError) as told:
        client.flush(timeout=30)
    assert (
        "the outcome of 2 records it took since its last complete flush is unknown "
        "(forward_reports is off)"
    ) in str(told.value)
    client.close(timeout=30)
