"""Three ways records were lost at shutdown or in a batch, for no gain.

- A ``close()`` of the application's, interrupted by the SIGTERM handler the docs recommend
  (it raises ``SystemExit``), left the transport marked closed: the exit close returned at
  once, and what was queued vanished with no report, dead letter or log line.
- Exit closes share one bound, counted from the start of exit; a transport whose close came
  after a stalled one's got no time at all, and gave up an event an atexit handler of the
  application's had just queued, which it would have delivered in milliseconds.
- One record bigger than ``max_queue_bytes`` in a ``put_many`` (multiprocessing_queue's relay)
  dropped every later record of its batch, said to be "the queue stayed full".
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mixpanel_core.bounded_queue import BoundedQueue
from mixpanel_core.emulator import EmulatorProcess

PRELUDE = """
import atexit, signal, sys, time
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Event
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

def event(insert_id):
    record = {"event": "e", "properties": {"token": "emulator-token", "distinct_id": "u",
              "time": time.time(), "$insert_id": insert_id}}
    return Event(freeze(record, "event"))
"""

INTERRUPTED_CLOSE = PRELUDE + textwrap.dedent(
    """
    url, dead = sys.argv[1:3]
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # the docs' remedy
    options = BufferedHttpOptions(
        max_batch_records=1, linger=0.01, exit_timeout=2.0, dead_letter_path=dead
    )
    transport = BufferedHttpTransport(MixpanelSettings(api_host=url), options)
    for i in range(5):
        transport.send(event(f"ev-{i}"))
    print("closing", flush=True)
    transport.close(30)  # the application's own shutdown, waiting on a stalled server
    """
)

LATE_CLOSE = PRELUDE + textwrap.dedent(
    """
    url_a, url_b = sys.argv[1:3]
    options = BufferedHttpOptions(linger=0.01, exit_timeout=3.0)
    a = BufferedHttpTransport(MixpanelSettings(api_host=url_a), options, name="A")
    a.send(event("a-first"))  # A's exit close is registered: it runs last
    atexit.register(lambda: a.send(event("a-app-stopped")))  # the application's own
    b = BufferedHttpTransport(MixpanelSettings(api_host=url_b), options, name="B")
    b.send(event("b-first"))  # B's exit close runs first, and waits out its bound
    time.sleep(0.5)
    """
)


def run_python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_close_interrupted_by_the_sigterm_handler_is_finished_by_the_exit_close(
    tmp_path: Path,
) -> None:
    dead = tmp_path / "dead.jsonl"
    with EmulatorProcess() as emulator:
        emulator.client.stall()
        child = run_python(INTERRUPTED_CLOSE, emulator.base_url, str(dead))
        assert child.stdout is not None
        assert child.stdout.readline() == "closing\n"
        time.sleep(0.5)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
        emulator.client.release()
    assert child.returncode == 0, err
    # The server stayed stalled: none delivered, every one dead-lettered with a reason.
    letters = [json.loads(line) for line in dead.read_text().splitlines() if line]
    ids = sorted(letter["record"]["properties"]["$insert_id"] for letter in letters)
    assert ids == [f"ev-{i}" for i in range(5)]


def test_a_transport_closed_after_a_stalled_one_still_delivers_what_exit_queued() -> None:
    with EmulatorProcess() as a, EmulatorProcess() as b:
        b.client.stall()
        child = run_python(LATE_CLOSE, a.base_url, b.base_url)
        _, err = child.communicate(timeout=60)
        b.client.release()
        delivered = sorted(a.client.insert_ids("track"))
    assert child.returncode == 0, err
    assert delivered == ["a-app-stopped", "a-first"]


@pytest.mark.parametrize("when_full", ["block", "drop_newest", "drop_oldest"])
def test_one_record_too_big_for_the_queue_refuses_only_itself_in_a_batch(when_full: str) -> None:
    drops: list[tuple[list[bytes], str]] = []
    queue: BoundedQueue[bytes] = BoundedQueue(
        100, 10_000, when_full, 5.0, lambda items, why: drops.append((items, why))
    )
    started = time.monotonic()
    queue.put_many([b"small-1", b"huge", b"small-2", b"small-3"], [200, 20_000, 200, 200])
    assert time.monotonic() - started < 4.0  # refused at once, not after block_timeout
    assert queue.take(10) == [b"small-1", b"small-2", b"small-3"]
    assert [items for items, _ in drops] == [[b"huge"]]
    assert "more than max_queue_bytes" in drops[0][1]
