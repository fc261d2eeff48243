"""Several ``buffered_http`` transports at interpreter exit: one deadline, not one each.

Each transport's exit close used to wait its own ``exit_timeout`` after the one before it
ended, so three transports that could not deliver held the exit three times as long; an
operator sizes the termination grace period on ``exit_timeout``. Each now counts its bound from
the start of exit: all of them end within the largest, and give up on what is left as
usual (dead-lettered, nothing vanishes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.emulator import Emulator

from ..subprocesses import run_python

pytestmark = pytest.mark.integration

TRANSPORTS = 3
EXIT_TIMEOUT = 4.0
EVENTS = 5

PROGRAM = """
import atexit, sys, time

# Registered first, so it runs last: after every exit clean-up, the transports' included.
atexit.register(lambda: print("exit took", time.monotonic() - ended, flush=True))

from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Event
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

base_url, folder, count, exit_timeout, events = sys.argv[1:]
transports = [
    BufferedHttpTransport(
        MixpanelSettings(api_host=base_url),
        BufferedHttpOptions(
            linger=0.01, exit_timeout=float(exit_timeout), read_timeout=600.0,
            dead_letter_path=f"{folder}/dead-{k}.jsonl",
        ),
        name=f"t{k}",
    )
    for k in range(int(count))
]
for k, transport in enumerate(transports):
    for n in range(int(events)):
        record = {"event": "e", "properties": {"token": "emulator-token", "distinct_id": "u",
            "time": time.time(), "$insert_id": f"exit-{k}-{n:08d}"}}
        transport.send(Event(freeze(record, "event")))
time.sleep(0.5)  # every transport's request is out, held by the stalled emulator
ended = time.monotonic()
"""


def test_the_exit_closes_of_several_transports_share_one_deadline(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    mixpanel_emulator.client.stall()
    try:
        done = run_python(
            PROGRAM,
            mixpanel_emulator.base_url,
            str(tmp_path),
            str(TRANSPORTS),
            str(EXIT_TIMEOUT),
            str(EVENTS),
        )
    finally:
        mixpanel_emulator.client.release()
    assert done.returncode == 0, done.stderr
    seconds = float(done.stdout.split("exit took")[1])
    # About EXIT_TIMEOUT (the first close waits it out, the others have nothing left), plus
    # 50 ms per thread given up on. One bound each, one after another: 3 x 4 s, over 12 s.
    assert seconds < 2 * EXIT_TIMEOUT, done.stderr
    for k in range(TRANSPORTS):
        lines = (tmp_path / f"dead-{k}.jsonl").read_text().splitlines()
        assert len(lines) == EVENTS, (k, done.stderr)
