"""A TOML boolean where a number goes is refused naming the key, never taken as 1 or 0.

Python counts ``True`` as the integer 1: let through, ``max_queue_messages = true`` would
bound a queue at one message, ``linger = true`` wait a second. Each test kills a mutant of
``schema._scalar`` that survived every other test.
"""

from __future__ import annotations

import pytest

from mixpanel_core import ConfigError
from mixpanel_core.buffered_http_options import BufferedHttpOptions
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.multiprocess.options import MultiprocessingQueueOptions
from mixpanel_core.schema import read


@pytest.mark.parametrize("key", ["max_queue_messages", "max_queue_bytes"])
def test_a_boolean_for_an_integer_key_is_refused_naming_it(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read(BufferedHttpOptions, {key: True}, "transports.out")
    assert str(caught.value) == f"transports.out.{key}: must be an integer, not a boolean"


def test_a_boolean_for_an_optional_integer_key_is_refused_naming_it() -> None:
    table = {"source": "events", "on_poison": "stop", "metrics_port": True}
    with pytest.raises(
        ConfigError, match=r"^forwarder\.metrics_port: must be (an )?integer, not a boolean$"
    ):
        read(ForwarderConfig, table, "forwarder")


@pytest.mark.parametrize("key", ["linger", "block_timeout", "flush_timeout", "exit_timeout"])
def test_a_boolean_for_a_number_of_seconds_is_refused_naming_it(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read(BufferedHttpOptions, {key: True}, "transports.out")
    assert str(caught.value) == f"transports.out.{key}: must be a number, not a boolean"


def test_a_boolean_for_a_multiprocessing_queue_duration_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        read(MultiprocessingQueueOptions, {"inner": "http", "linger": False}, "transports.mp")
    assert str(caught.value) == "transports.mp.linger: must be a number, not a boolean"
