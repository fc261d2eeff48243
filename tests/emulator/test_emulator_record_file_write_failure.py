"""A record file that does not take a request's records (a full disk, a file size limit):
the request is answered 500 and counted as one, and nothing of it is counted as accepted,
kept, or left in the file. Before, its records were counted and kept before the write
failed, so every retry of the 500 added them again as duplicates, and the request appeared
nowhere in ``stats()["requests"]``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.subprocesses import run_python

pytestmark = pytest.mark.integration

PROGRAM = """
import json, resource, signal, sys, time
from pathlib import Path

import requests

from mixpanel_core.emulator import Emulator

path = Path(sys.argv[1])
# Writes past 4,000 bytes fail (EFBIG) rather than end the process (SIGXFSZ).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, resource.RLIM_INFINITY))


def batch(first, count, pad=""):
    return [
        {"event": "E", "properties": {"token": "emulator-token", "distinct_id": "u",
         "time": time.time(), "$insert_id": f"id-{first + i}", "pad": pad}}
        for i in range(count)
    ]


answers = []
with Emulator(record_file=path) as emulator:
    for records in (batch(0, 2), batch(2, 30, "p" * 100), batch(2, 30, "p" * 100), batch(40, 2)):
        answer = requests.post(emulator.base_url + "/track", json=records)
        answers.append([answer.status_code, answer.text])
    stats = emulator.stats()
    kept = [r["properties"]["$insert_id"] for r in emulator.records("track")]
print(json.dumps({"answers": answers, "stats": stats, "kept": kept}))
"""


def test_a_request_the_record_file_refused_is_a_500_with_nothing_of_it_counted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "records.jsonl"
    finished = run_python(PROGRAM, str(path))
    assert finished.returncode == 0, finished.stderr
    seen = json.loads(finished.stdout)
    statuses = [status for status, _ in seen["answers"]]
    assert statuses == [200, 500, 500, 200]
    assert "the record file could not be written" in seen["answers"][1][1]
    stats = seen["stats"]
    assert stats["accepted"]["track"] == 4
    assert (stats["unique_events"], stats["duplicate_events"]) == (4, 0)
    assert stats["requests"]["track"] == {"200": 2, "500": 2}
    assert seen["kept"] == ["id-0", "id-1", "id-40", "id-41"]
    # The file holds whole lines of the accepted requests only: the refused one's part that
    # went in before the limit was cut back out.
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    written = [json.loads(line)["record"]["properties"]["$insert_id"] for line in lines[:-1]]
    assert written == ["id-0", "id-1", "id-40", "id-41"]
