"""``BufferedConsumer`` at exit: one bound for all consumers, and every drop said.

Each test runs a program in a fresh interpreter, as a user's process ends. Each killed a mutant
that survived every other test: an exit flush that gave each consumer its own
``EXIT_FLUSH_SECONDS`` (six consumers, six times the bound), an exit without the orphan
thread's last report (records of freed consumers dropped past ``MAX_ORPHANED_RECORDS`` since
the idle thread last woke were dropped without a word), and an orphan thread that did not read
the exit's deadline (it went on retrying past it).
"""

from __future__ import annotations

import re

import pytest

from mixpanel_core.emulator import Emulator

from .subprocesses import run_python

pytestmark = pytest.mark.integration

CONSUMERS = 6
RECORDS = 3

SHARED_BOUND_PROGRAM = f"""
import atexit, logging, sys, time
import mixpanel
from mixpanel_core import compat_buffers
from mixpanel_core.compat_consumers import BufferedConsumer

logging.basicConfig(format="%(levelname)s %(message)s")
compat_buffers.EXIT_FLUSH_SECONDS = 3.0

def exit_took():
    # Registered before any consumer is built: runs after their exit hooks.
    print("exit took", time.monotonic() - ENDED)

atexit.register(exit_took)
consumers = []
for c in range({CONSUMERS}):
    # Every request fails (503) and is retried: each consumer would use all the time it has.
    consumer = BufferedConsumer(api_host=sys.argv[1], retry_limit=20, retry_backoff_factor=0.05)
    client = mixpanel.Mixpanel("emulator-token", consumer=consumer)
    for n in range({RECORDS}):
        client.track(f"user-{{c}}-{{n}}", "At exit")
    consumers.append(consumer)
ENDED = time.monotonic()
"""

NOT_DELIVERED = re.compile(r"BufferedConsumer: (\d+) record\(s\) not delivered at exit")


def test_the_exit_flushes_of_many_consumers_share_one_bound(
    mixpanel_emulator: Emulator,
) -> None:
    """Three seconds for all six: the first consumer's retries use them (up to the last one
    that can end within them), and the others start no request after them. Each consumer
    alone would retry for about two seconds (waits of 0.1, 0.2, 0.4 and 0.8 s, more with
    jitter): twelve seconds in all. Checked against 6 s, far from either."""
    mixpanel_emulator.fail_next(10_000, 503)
    finished = run_python(SHARED_BOUND_PROGRAM, mixpanel_emulator.base_url)
    assert finished.returncode == 0, finished.stderr
    took = float(finished.stdout.split()[-1])
    assert took < 6.0, finished.stderr
    # Nothing lost silently: every record is counted in the lines saying what was not sent.
    assert sum(map(int, NOT_DELIVERED.findall(finished.stderr))) == CONSUMERS * RECORDS
    assert mixpanel_emulator.stats()["accepted"]["track"] == 0


DROPPED_AT_EXIT_PROGRAM = """
import gc, logging, sys
import mixpanel
from mixpanel_core import compat_buffers
from mixpanel_core.compat_consumers import BufferedConsumer

logging.basicConfig(format="%(levelname)s %(message)s")
compat_buffers.MAX_ORPHANED_RECORDS = 5
# The idle orphan thread would not wake to report before the process ends.
compat_buffers.ORPHAN_REPORT_SECONDS = 3600.0

consumer = BufferedConsumer(max_size=50, api_host=sys.argv[1])
client = mixpanel.Mixpanel("emulator-token", consumer=consumer)
for n in range(10):
    client.track(f"user-{n}", "Dropped")
del client, consumer
gc.collect()
print("dropped", compat_buffers.orphan_thread.dropped)
"""

DROPPED = re.compile(r"BufferedConsumer: (\d+) record\(s\) dropped, not sent")


def test_records_dropped_past_the_bound_just_before_exit_are_logged_at_exit(
    mixpanel_emulator: Emulator,
) -> None:
    finished = run_python(DROPPED_AT_EXIT_PROGRAM, mixpanel_emulator.base_url)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["dropped", "10"], finished.stderr
    assert [int(n) for n in DROPPED.findall(finished.stderr)] == [10], finished.stderr
    assert finished.stderr.startswith("ERROR "), finished.stderr
    assert mixpanel_emulator.stats()["accepted"]["track"] == 0


ORPHAN_AT_EXIT_PROGRAM = """
import gc, logging, sys, time
import mixpanel
from mixpanel_core import compat_buffers
from mixpanel_core.compat_consumers import BufferedConsumer

logging.basicConfig(format="%(levelname)s %(message)s")
compat_buffers.EXIT_FLUSH_SECONDS = 1.0

# Retried for up to a minute (its retry budget) if nothing bounded it.
consumer = BufferedConsumer(api_host=sys.argv[1], retry_limit=1000, retry_backoff_factor=0.05)
client = mixpanel.Mixpanel("emulator-token", consumer=consumer)
for n in range(3):
    client.track(f"user-{n}", "Freed")
del client, consumer
gc.collect()
orphans = compat_buffers.orphan_thread
deadline = time.monotonic() + 30
while (orphans.queue.qsize() or not orphans.waiting()) and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.3)  # the orphan thread is retrying the freed consumer's records
print("waiting", orphans.waiting())
"""


def test_the_orphan_thread_stops_retrying_at_the_exit_deadline(
    mixpanel_emulator: Emulator,
) -> None:
    """The process exits while the orphan thread retries a freed consumer's records: it gives
    up by the exit's one deadline and says so itself; the exit hook of those records, which
    waits for it, then has nothing left. A thread that went on retrying made the exit hook
    wait out its grace and log them as "still being sent", while the thread still sent."""
    mixpanel_emulator.fail_next(10_000, 503)
    finished = run_python(ORPHAN_AT_EXIT_PROGRAM, mixpanel_emulator.base_url)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["waiting", "3"], finished.stderr
    assert "still being sent" not in finished.stderr, finished.stderr
    logged = re.findall(
        r"BufferedConsumer: (\d+) record\(s\) not delivered after the consumer was freed",
        finished.stderr,
    )
    assert logged == ["3"], finished.stderr
