"""The exit close finishes a ``close()`` of the application's that did not end.

A ``close()`` that finds another under way returns at once, as documented. The exit close used
to be such a call: when the application's own close was still running on a daemon thread at
exit (a shutdown helper), or had been interrupted past its flush (a SIGTERM while it reported
what it gave up on), the exit close returned at once and the interpreter ended with the queue
untaken: no delivery, no report, no dead letter, no log line. Now the exit close waits for the
other close within ``exit_timeout``, then gives up on what is left itself: every record sent
is delivered or dead-lettered.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mixpanel_core.emulator import Emulator
from tests.subprocesses import run_python

pytestmark = pytest.mark.integration

SENDING = """
import os, signal, sys, threading, time
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Event
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

base_url, tag, dead, count, exit_timeout = sys.argv[1:6]


def event(n):
    record = {"event": "e", "properties": {"token": "emulator-token", "distinct_id": "u",
        "time": time.time() - 10, "$insert_id": f"{tag}-{n:04d}"}}
    return Event(freeze(record, "event"))


def sending(batch_records, **more):
    transport = BufferedHttpTransport(
        MixpanelSettings(api_host=base_url),
        BufferedHttpOptions(linger=0.01, max_batch_records=batch_records,
            exit_timeout=float(exit_timeout), dead_letter_path=dead),
        **more,
    )
    for n in range(int(count)):
        transport.send(event(n))
    return transport


def close_while_the_first_batch_is_held(transport):
    time.sleep(0.3)  # the first batch is out, held by the stalled emulator
    transport.close(0.5)
    print("close returned", flush=True)
"""

DAEMON_CLOSE = (
    SENDING
    + """
transport = sending(10)
# The application's shutdown helper closes on a daemon thread, with a long bound, and the
# main thread returns before it is done.
threading.Thread(target=transport.close, args=(60,), daemon=True).start()
time.sleep(0.1)
print("main thread ends", flush=True)
"""
)

INTERRUPTED_CLOSE = (
    SENDING
    + """
import atexit
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # the documented handler
signalled = False
reported = set()
# Registered before the transport's exit close, so it runs after it.
atexit.register(lambda: print("reported", len(reported), flush=True))


def report(delivery_report):
    # The signal comes while close() reports what it gives up on (the first FAILED report:
    # the emulator is stalled, so nothing is accepted).
    global signalled
    reported.add(delivery_report.message.insert_id)
    if not signalled:
        signalled = True
        os.kill(os.getpid(), signal.SIGTERM)


close_while_the_first_batch_is_held(sending(50, report=report, observed=True))
"""
)


def dead_lettered(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line)["record"]["properties"]["$insert_id"] for line in lines]


def test_a_close_running_on_a_daemon_thread_is_waited_for_within_exit_timeout(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    mixpanel_emulator.client.set_latency(0.3)  # 5 requests of 10: about 1.5 s in all
    dead = tmp_path / "dead.jsonl"
    base_url = mixpanel_emulator.base_url
    finished = run_python(DAEMON_CLOSE, base_url, "waited", str(dead), "50", "20")
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == "main thread ends\n"
    stored = sorted(mixpanel_emulator.client.insert_ids("track"))
    assert stored == [f"waited-{n:04d}" for n in range(50)], finished.stderr
    assert dead_lettered(dead) == []


def test_a_close_running_on_a_daemon_thread_past_exit_timeout_leaves_nothing_untold(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    mixpanel_emulator.client.set_latency(1.0)  # 5 requests of 10: about 5 s, over the bound
    dead = tmp_path / "dead.jsonl"
    base_url = mixpanel_emulator.base_url
    finished = run_python(DAEMON_CLOSE, base_url, "bound", str(dead), "50", "1.5")
    assert finished.returncode == 0, finished.stderr
    mixpanel_emulator.client.set_latency(0)
    given_up = dead_lettered(dead)
    assert len(given_up) == len(set(given_up))  # each dead-lettered once
    assert given_up, "nothing was given up on: the bound was not reached"
    assert "not delivered" in finished.stderr  # and said so
    # A request still out when it was given up on may have been stored too (it is reported
    # FAILED: Mixpanel's answer never came); none is neither.
    told = set(given_up) | set(mixpanel_emulator.client.insert_ids("track"))
    assert told == {f"bound-{n:04d}" for n in range(50)}, finished.stderr


def test_a_close_interrupted_while_it_reports_is_finished_by_the_exit_close(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    mixpanel_emulator.client.stall()
    dead = tmp_path / "dead.jsonl"
    base_url = mixpanel_emulator.base_url
    try:
        finished = run_python(INTERRUPTED_CLOSE, base_url, "term", str(dead), "300", "5")
    finally:
        mixpanel_emulator.client.release()
    assert finished.returncode == 0, finished.stderr
    assert "close returned" not in finished.stdout  # the signal did interrupt it
    assert "reported 300" in finished.stdout, finished.stderr  # each has its report
    given_up = dead_lettered(dead)
    assert len(given_up) == len(set(given_up))
    # The batch held by the stalled emulator was given up on during its request, the rest
    # as it was queued: every record once, though the signal came in the first report.
    assert set(given_up) == {f"term-{n:04d}" for n in range(300)}, finished.stderr


SLOW_FIFO_READER = (
    SENDING
    + """
import atexit
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # the documented handler
reported = set()
atexit.register(lambda: print("reported", len(reported), flush=True))
close_while_the_first_batch_is_held(
    sending(50, report=lambda r: reported.add(r.message.insert_id), observed=True)
)
"""
)


def test_a_sigterm_while_close_writes_dead_letters_to_a_slow_reader_loses_no_report(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    # A log shipper reading the dead letters from a FIFO, slowly: close() is still writing
    # what it gave up on when the signal comes. Every record keeps its report; the dead
    # letters of the write the signal cut (one chunk of 500 at most) may be missing, and an
    # ERROR line says so; the lines after it are whole.
    fifo = tmp_path / "dead.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    mixpanel_emulator.client.stall()
    program = textwrap.dedent(SLOW_FIFO_READER)
    child = subprocess.Popen(
        [sys.executable, "-c", program, mixpanel_emulator.base_url, "fifo", str(fifo), "3000", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    read = bytearray()
    signalled = False
    try:
        while True:
            chunk = b""
            if select.select([reader], [], [], 0.1)[0]:
                with contextlib.suppress(BlockingIOError):
                    chunk = os.read(reader, 4096)
            read += chunk
            if not signalled and len(read) > 50_000:
                child.send_signal(signal.SIGTERM)
                signalled = True
            elif not signalled:
                time.sleep(0.01)  # a slow reader
            if not chunk and child.poll() is not None:
                break  # it has ended, and all it wrote is read
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
        os.close(reader)
        mixpanel_emulator.client.release()
    assert signalled, "the dead letters were written before the signal could come"
    assert child.returncode == 0, err
    assert "close returned" not in out
    assert "reported 3000" in out, err
    ids, cut = [], 0
    for line in bytes(read).splitlines():
        try:
            ids.append(json.loads(line)["record"]["properties"]["$insert_id"])
        except ValueError:
            cut += 1  # the line the signal cut
    assert cut <= 1
    assert len(ids) == len(set(ids))
    assert len(ids) >= 3000 - 500, err
    if len(ids) < 3000:
        assert "was interrupted (SystemExit): any of them may be missing" in err
