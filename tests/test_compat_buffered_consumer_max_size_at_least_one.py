"""``BufferedConsumer(max_size=0)`` (or less) sends each record at once, as ``max_size=1``.

A batch of at most 0 records can never empty the buffer: a mutant that kept the size as
given, without the floor of 1, spun forever in its first ``send`` and survived every test.
"""

from __future__ import annotations

import threading

import mixpanel
import pytest

from mixpanel_core.compat_consumers import BufferedConsumer
from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("max_size", [0, -5])
def test_a_max_size_below_one_sends_each_record_at_once(
    mixpanel_emulator: Emulator, max_size: int
) -> None:
    consumer = BufferedConsumer(max_size=max_size, api_host=mixpanel_emulator.base_url)
    assert consumer._max_size == 1
    client = mixpanel.Mixpanel("emulator-token", consumer=consumer)
    # On a thread of its own, so that a send that never returns fails the test, bounded.
    sender = threading.Thread(target=client.track, args=("user-1", "signup"), daemon=True)
    sender.start()
    sender.join(30)
    assert not sender.is_alive(), "send() never returned"
    assert mixpanel_emulator.client.stats()["accepted"]["track"] == 1
