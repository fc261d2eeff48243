"""``BufferedConsumer(max_size=0)`` (or less) sends each record at once, as ``max_size=1``;
a ``max_size`` that is no whole number is refused at once.

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


@pytest.mark.parametrize("max_size", [2.5, 10.0, "10", None])
def test_a_max_size_that_is_not_a_whole_number_is_refused_when_the_consumer_is_built(
    max_size: object,
) -> None:
    """The official class takes it and fails at its first full batch (it slices its buffer
    with it): every record given until then was held, and lost at exit."""
    with pytest.raises(TypeError, match=r"^max_size: must be a whole number of records, not "):
        BufferedConsumer(max_size=max_size)  # type: ignore[arg-type]


class Count:
    """A whole number that is no int (as a numpy integer): it slices, and is taken."""

    def __index__(self) -> int:
        return 7


def test_a_max_size_that_slices_as_an_int_is_taken() -> None:
    assert BufferedConsumer(max_size=Count())._max_size == 7  # type: ignore[arg-type]
