"""A ``buffered_http`` table is checked as both its halves are: the HTTP keys (timeouts, pool,
batch limits) as an ``http`` table's, the queue keys as ``BufferOptions``'. Each test kills a
mutant that survived every other test: the HTTP half's check skipped, a queue bound of 0
taken, a blank dead-letter path taken for a file name.
"""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import ConfigError
from mixpanel_core.buffered_http_options import BufferedHttpOptions
from mixpanel_core.schema import read


def refused(table: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        read(BufferedHttpOptions, table, "transports.out")
    return str(caught.value)


@pytest.mark.parametrize(
    ("table", "start"),
    [
        ({"read_timeout": 0}, "transports.out.read_timeout: must be greater than 0"),
        ({"connect_timeout": 0.0}, "transports.out.connect_timeout: must be greater than 0"),
        ({"pool_size": 0}, "transports.out.pool_size: must be between 1 and "),
        ({"max_batch_bytes": 0}, "transports.out.max_batch_bytes: must be between 1 and "),
    ],
)
def test_the_http_keys_of_a_buffered_http_table_are_checked(
    table: dict[str, Any], start: str
) -> None:
    assert refused(table).startswith(start)


@pytest.mark.parametrize("key", ["max_queue_messages", "max_queue_bytes"])
def test_a_queue_bound_of_0_is_refused_naming_it(key: str) -> None:
    # 0 would make every send meet `when_full`: under `drop_newest`, every message dropped.
    assert refused({key: 0}) == f"transports.out.{key}: must be greater than 0"


def test_a_blank_dead_letter_path_is_refused_not_taken_for_a_file_name() -> None:
    message = refused({"dead_letter_path": "   "})
    assert message.startswith("transports.out.dead_letter_path: must not be empty or blank")


@pytest.mark.parametrize(
    ("table", "said"),
    [
        (
            {"max_batch_bytes": 100_000_000},
            "max_batch_bytes: must be between 1 and 10000000 (the most Mixpanel documents, "
            "for /import), not 100000000",
        ),
        (
            {"backoff_base": 50, "backoff_cap": 1},
            "backoff_base: must not be greater than backoff_cap (50.0 > 1.0); lower it, or raise "
            "backoff_cap",
        ),
        (
            {"rate_limit_cap": 1.5},  # under the default base of 2 s
            "rate_limit_base: must not be greater than rate_limit_cap (2.0 > 1.5); lower it, "
            "or raise rate_limit_cap",
        ),
    ],
)
def test_numbers_that_would_be_ignored_or_refused_by_mixpanel_are_refused(
    table: dict[str, Any], said: str
) -> None:
    """Review S1: a base above its cap was cut to the cap without a word (waits of 1, 1, 1 s
    for a base of 50), and a 100 MB budget had every full batch refused 413 first."""
    assert refused(table) == f"transports.out.{said}"


def test_a_base_equal_to_its_cap_is_taken() -> None:
    options = read(BufferedHttpOptions, {"backoff_base": 2, "backoff_cap": 2}, "transports.out")
    assert options.retry_policy.cap == 2
