"""Every duration option is a finite number of seconds, at most a day: checked when the
options are read from a file and when they are built in Python, naming the key and the bound.

A value past any real use (``read_timeout = 1e300``) used to be taken, then raised a raw
OverflowError after the records were sent (``http``), reported delivered records FAILED and
dead-lettered them (``buffered_http``), or raised one from a full queue (``block_timeout``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from mixpanel_core import ConfigError
from mixpanel_core.buffer_options import BufferOptions
from mixpanel_core.config import config_from_mapping
from mixpanel_core.forwarder.config import ForwarderConfig, resolve
from mixpanel_core.ingestion import HttpOptions
from mixpanel_core.kafka.options import KafkaOptions, check_transport_options
from mixpanel_core.multiprocess.options import MultiprocessingQueueOptions
from mixpanel_core.pipeline import Pipeline

A_DAY = 86_400

HTTP_SECONDS = [
    "connect_timeout",
    "read_timeout",
    "retry_budget",
    "backoff_base",
    "backoff_cap",
    "rate_limit_base",
    "rate_limit_cap",
]
BUFFER_SECONDS = ["block_timeout", "linger", "flush_timeout", "exit_timeout"]
QUEUE_SECONDS = ["linger", "block_timeout", "check_interval", "shutdown_timeout"]
KAFKA_SECONDS = ["flush_timeout", "close_timeout", "exit_timeout"]
FORWARDER_SECONDS = ["linger", "shutdown_deadline", "log_interval"]
TOO_LONG = [A_DAY + 1, 1e300, 1e308]


def build(transport: dict[str, Any]) -> None:
    """Load a file with one transport and build it, as `config check` does."""
    config = config_from_mapping({"transports": {"t": transport}})
    pipeline = Pipeline.from_config(config)
    try:
        pipeline.build_all()
    finally:
        pipeline.close(timeout=1)


def test_a_day_is_taken_from_a_file_and_kept() -> None:
    config = config_from_mapping(
        {"transports": {"t": {"type": "buffered_http", "retry_budget": A_DAY, "linger": A_DAY}}}
    )
    pipeline = Pipeline.from_config(config)
    try:
        sender = pipeline.transport("t").sender
        assert (sender.client.options.retry_budget, sender.options.linger) == (A_DAY, A_DAY)
    finally:
        pipeline.close(timeout=1)


@pytest.mark.parametrize("value", TOO_LONG)
@pytest.mark.parametrize(
    ("kind", "key"),
    [("http", key) for key in HTTP_SECONDS] + [("buffered_http", key) for key in BUFFER_SECONDS],
)
def test_a_duration_past_a_day_in_a_file_is_refused_naming_the_key_and_the_bound(
    kind: str, key: str, value: float
) -> None:
    with pytest.raises(ConfigError, match=f"transports.t.{key}: must be .* at most 86400"):
        build({"type": kind, key: value})


@pytest.mark.parametrize("key", KAFKA_SECONDS)
def test_a_kafka_duration_past_a_day_is_refused_when_read(key: str) -> None:
    """Read through the forwarder, which reads the source transport's table without a broker."""
    table = {"type": "kafka", "bootstrap_servers": "127.0.0.1:1", "topic": "events", key: 1e300}
    config = config_from_mapping(
        {
            "transports": {"bus": table},
            "forwarder": {"source": "bus", "dead_letter_topic": "dlq"},
        }
    )
    with pytest.raises(ConfigError, match=f"transports.bus.{key}: must be 0 or more and at"):
        resolve(config)


@pytest.mark.parametrize("key", FORWARDER_SECONDS)
def test_a_forwarder_duration_past_a_day_is_refused_when_it_starts(key: str) -> None:
    config = config_from_mapping(
        {
            "transports": {"bus": {"type": "kafka", "bootstrap_servers": "k:9092", "topic": "e"}},
            "forwarder": {"source": "bus", "dead_letter_topic": "dlq", key: 1e300},
        }
    )
    with pytest.raises(ConfigError, match=f"forwarder.{key}: must be 0 or more and at most"):
        resolve(config)


def test_an_integer_too_large_for_a_number_is_a_config_error_naming_the_key() -> None:
    """It used to be a raw OverflowError traceback from float()."""
    with pytest.raises(ConfigError, match=r"transports.t.connect_timeout: must be a number"):
        build({"type": "http", "connect_timeout": 10**400})


OPTION_CLASSES: list[tuple[Callable[..., object], list[str]]] = [
    (HttpOptions, HTTP_SECONDS),
    (BufferOptions, BUFFER_SECONDS),
    (lambda **kw: ForwarderConfig(source="bus", dead_letter_topic="dlq", **kw), FORWARDER_SECONDS),
    (lambda **kw: KafkaOptions("k:9092", "events", **kw), KAFKA_SECONDS),
    (lambda **kw: MultiprocessingQueueOptions(inner="direct", **kw), QUEUE_SECONDS),
]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e300])
@pytest.mark.parametrize(
    ("make", "key"),
    [(make, key) for make, keys in OPTION_CLASSES for key in keys],
)
def test_option_classes_built_in_python_refuse_nan_inf_and_past_a_day(
    make: Callable[..., object], key: str, value: float
) -> None:
    """NaN slipped through every `<= 0` check: it compares false with everything."""
    with pytest.raises(ValueError, match=f"{key}: must be .* at most 86400 seconds"):
        make(**{key: value})


@pytest.mark.parametrize("value", [math.nan, 1e300])
def test_the_kafka_transport_constructor_check_refuses_them_too(value: float) -> None:
    with pytest.raises(ValueError, match="close_timeout: must be 0 or more and at most 86400"):
        check_transport_options("k:9092", "events", max_unacknowledged=1, close_timeout=value)


@pytest.mark.parametrize("key", ["connect_timeout", "read_timeout"])
def test_connect_and_read_timeouts_stay_above_0(key: str) -> None:
    with pytest.raises(ValueError, match=f"{key}: must be greater than 0 and at most 86400"):
        HttpOptions(**{key: 0.0})
