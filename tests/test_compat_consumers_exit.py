"""``BufferedConsumer`` at exit and across ``fork()``, and what an adapted consumer reports.

The official ``BufferedConsumer`` loses what it holds when the process ends; ours sends it,
within ``EXIT_FLUSH_SECONDS``, and says how many records it could not deliver.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
import time

import pytest

from mixpanel_core import Mixpanel as CoreMixpanel
from mixpanel_core.compat import Mixpanel
from mixpanel_core.compat_buffers import EXIT_FLUSH_SECONDS
from mixpanel_core.compat_consumers import BufferedConsumer, Consumer
from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.testing import ReportCollector

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"

PROGRAM = """
import sys
from mixpanel_core.compat import Mixpanel
from mixpanel_core.compat_consumers import BufferedConsumer

consumer = BufferedConsumer(max_size=50, api_host=sys.argv[1], retry_backoff_factor=0.01)
mp = Mixpanel(sys.argv[2], consumer=consumer)
for i in range(30):
    mp.track(f"user-{i}", "from a process that just ends", {"i": i})
mp.people_set("user-1", {"plan": "pro"})
"""


def _run(base_url: str, token: str = TOKEN) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM), base_url, token],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return finished, time.monotonic() - started


def test_what_is_buffered_is_sent_when_the_process_exits(mixpanel_emulator: Emulator) -> None:
    finished, _ = _run(mixpanel_emulator.base_url)
    assert finished.returncode == 0, finished.stderr
    accepted = mixpanel_emulator.client.stats()["accepted"]
    assert (accepted["track"], accepted["engage"]) == (30, 1)


def test_an_exit_flush_that_cannot_deliver_is_bounded_and_says_how_many(
    mixpanel_emulator: Emulator,
) -> None:
    mixpanel_emulator.client.fail_fraction(1.0, [503])
    finished, took = _run(mixpanel_emulator.base_url)
    assert finished.returncode == 0
    assert took < EXIT_FLUSH_SECONDS + 20  # interpreter start-up included, on a busy machine
    assert "31 record(s) not delivered at exit" in finished.stderr
    assert mixpanel_emulator.client.stats()["accepted"]["track"] == 0


def test_an_exit_flush_counts_refused_records_as_not_delivered(
    mixpanel_emulator: Emulator,
) -> None:
    # Refused records are no longer held once answered: the count said 0 of 31.
    finished, _ = _run(mixpanel_emulator.base_url, token="a-token-the-emulator-refuses")
    assert finished.returncode == 0
    assert "31 record(s) not delivered at exit" in finished.stderr
    assert mixpanel_emulator.client.stats()["accepted"]["track"] == 0


def _track_in_child(consumer: BufferedConsumer) -> None:
    mp = Mixpanel(TOKEN, consumer=consumer)
    for i in range(3):
        mp.track(f"child-{i}", "in the child")
    # No flush: the child ends through os._exit, and the exit flush sends its three.


def test_a_fork_child_sends_its_own_records_and_not_its_parents(
    mixpanel_emulator: Emulator,
) -> None:
    consumer = BufferedConsumer(max_size=50, api_host=mixpanel_emulator.base_url)
    mp = Mixpanel(TOKEN, consumer=consumer)
    for i in range(5):
        mp.track(f"parent-{i}", "in the parent")
    child = multiprocessing.get_context("fork").Process(target=_track_in_child, args=(consumer,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    records = mixpanel_emulator.client.wait_for_records(3, "track", timeout=10)
    assert sorted(r["properties"]["distinct_id"] for r in records) == [
        "child-0",
        "child-1",
        "child-2",
    ]
    consumer.flush()
    ids = [r["properties"]["distinct_id"] for r in mixpanel_emulator.client.records("track")]
    expected = [f"child-{i}" for i in range(3)] + [f"parent-{i}" for i in range(5)]
    assert sorted(ids) == sorted(expected)  # each once: the child did not send the parent's


def test_a_buffering_consumer_never_reports_accepted_what_it_only_buffered(
    mixpanel_emulator: Emulator,
) -> None:
    observer = ReportCollector()
    mixpanel_emulator.client.fail_fraction(1.0, [503])
    consumer = BufferedConsumer(max_size=50, api_host=mixpanel_emulator.base_url, retry_limit=0)
    client = CoreMixpanel(TOKEN, pipeline=Pipeline([("observer", observer)], {"c": consumer}))
    for i in range(10):
        client.track(f"user-{i}", "buffered")
    with pytest.raises(Exception, match="503"):
        client.flush()
    assert [r for r in observer.reports if r.status is DeliveryStatus.ACCEPTED] == []
    assert mixpanel_emulator.client.stats()["accepted"]["track"] == 0
    mixpanel_emulator.client.clear_faults()
    consumer.flush()  # leave nothing for the exit flush of this test process


def test_a_consumer_that_sends_at_once_reports_each_message_accepted(
    mixpanel_emulator: Emulator,
) -> None:
    observer = ReportCollector()
    consumer = Consumer(api_host=mixpanel_emulator.base_url)
    client = CoreMixpanel(TOKEN, pipeline=Pipeline([("observer", observer)], {"c": consumer}))
    for i in range(3):
        client.track(f"user-{i}", "sent at once")
    assert [r.status for r in observer.reports] == [DeliveryStatus.ACCEPTED] * 3
    assert mixpanel_emulator.client.stats()["accepted"]["track"] == 3
