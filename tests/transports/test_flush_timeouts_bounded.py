"""An explicit ``flush``/``close`` timeout is a number of seconds from 0 to a day, for every
transport that waits: ``inf`` raised OverflowError from a lock's wait, ``nan`` made
``buffered_http``'s flush wait forever, a negative one meant nothing."""

from __future__ import annotations

import math

import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import Emulator
from mixpanel_core.messages import Message
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.settings import MixpanelSettings
from mixpanel_core.testing import memory_client
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

pytestmark = pytest.mark.integration

RULE = "timeout: must be 0 or more and at most 86400"


def a_message() -> Message:
    client, memory = memory_client("emulator-token")
    client.track("user-1", "Signed up")
    return memory.messages[0]


@pytest.mark.parametrize("timeout", [math.inf, math.nan, -1.0, 86_401.0])
def test_buffered_http_refuses_a_timeout_it_cannot_keep_and_holds_on(
    mixpanel_emulator: Emulator, timeout: float
) -> None:
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token")
    transport = BufferedHttpTransport(settings, BufferedHttpOptions(linger=0.01))
    mixpanel_emulator.stall()
    try:
        transport.send(a_message())
        with pytest.raises(ValueError, match=RULE):
            transport.flush(timeout)
        with pytest.raises(ValueError, match=RULE):
            transport.close(timeout)
    finally:
        mixpanel_emulator.release()
    assert transport.close(10) == []  # the refused calls closed nothing and lost nothing
    assert len(mixpanel_emulator.records("track")) == 1


def test_multiprocessing_queue_refuses_them_too_and_still_delivers(
    mixpanel_emulator: Emulator,
) -> None:
    config = config_from_mapping(
        {
            "mixpanel": {"api_host": mixpanel_emulator.base_url, "token": "emulator-token"},
            "transports": {
                "direct": {"type": "http"},
                "queue": {"type": "multiprocessing_queue", "inner": "direct"},
            },
            "routes": [{"transport": "queue"}],
        }
    )
    client = Mixpanel("emulator-token", config=config)
    client.track("user-1", "Signed up")
    queue = client.pipeline.transport("queue")
    for timeout in (math.inf, math.nan, -1.0):
        with pytest.raises(ValueError, match=RULE):
            queue.flush(timeout)
        with pytest.raises(ValueError, match=RULE):
            queue.close(timeout)
    assert client.close(30) == []
    assert len(mixpanel_emulator.records("track")) == 1


@pytest.mark.parametrize("kind", ["http", "memory", "console"])
@pytest.mark.parametrize("verb", ["flush", "close"])
def test_the_transports_that_never_wait_keep_the_same_rule(kind: str, verb: str) -> None:
    # The contract's rule for every transport: a timeout is refused alike whichever is built.
    config = config_from_mapping({"transports": {"t": {"type": kind}}})
    transport = Pipeline.from_config(config).transport("t")
    with pytest.raises(ValueError, match=RULE):
        getattr(transport, verb)(math.inf)
    assert list(getattr(transport, verb)(0.0)) == []


def test_a_client_close_with_a_refused_timeout_closes_nothing(mixpanel_emulator: Emulator) -> None:
    # It closed the transports that do not wait, then raised from buffered_http, left open.
    config = config_from_mapping(
        {
            "mixpanel": {"api_host": mixpanel_emulator.base_url, "token": "emulator-token"},
            "transports": {"kept": {"type": "memory"}, "sent": {"type": "buffered_http"}},
            "routes": [{"transport": ["kept", "sent"]}],
        }
    )
    client = Mixpanel("emulator-token", config=config)
    client.track("user-1", "Signed up")
    with pytest.raises(ValueError, match=RULE):
        client.close(math.inf)
    assert client.pipeline.transport("kept").closed is False
    assert client.close(10) == []
    assert client.pipeline.transport("kept").closed is True
    assert len(mixpanel_emulator.records("track")) == 1
