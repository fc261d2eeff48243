"""``forwarder.idle_warning`` is bounded like every duration: 0 to a day, refused naming the key
beyond (a wait of 1e12 seconds overflows what ``threading`` waits accept). Kills a mutant
leaving it out of the checked durations, which survived every test.
"""

from __future__ import annotations

import pytest

from mixpanel_core import ConfigError
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.schema import MAX_SECONDS, read

TABLE = {"source": "events", "on_poison": "stop"}


@pytest.mark.parametrize("seconds", [MAX_SECONDS + 1, 1e12, -1.0, float("nan")])
def test_an_idle_warning_out_of_bounds_is_refused_naming_the_key(seconds: float) -> None:
    with pytest.raises(ConfigError) as caught:
        read(ForwarderConfig, {**TABLE, "idle_warning": seconds}, "forwarder")
    assert str(caught.value).startswith(
        f"forwarder.idle_warning: must be 0 or more and at most {MAX_SECONDS} seconds"
    )


@pytest.mark.parametrize("seconds", [0, MAX_SECONDS])
def test_0_and_a_day_are_taken(seconds: int) -> None:
    assert read(ForwarderConfig, {**TABLE, "idle_warning": seconds}, "forwarder").idle_warning == (
        seconds
    )
