"""R71 F3: a read error in the middle of a chunk (a gzip file cut short, a JSON array cut short)
settles the records read before it, as a refused record does. Raised mid-chunk, it let the
transports' close deliver those records while the checkpoint stayed before them, so every rerun
met the same cut and sent them again: each profile ``$add`` among them applied once more."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from mixpanel_core.commands.errors import InputError
from mixpanel_core.emulator import Emulator

from .conftest import write_config
from .test_send import backfill

pytestmark = pytest.mark.integration

PROFILES = [{"$distinct_id": f"user-{n}", "$add": {"logins": 1}} for n in range(1000)]


def gzip_cut_short(tmp_path: Path) -> Path:
    whole = gzip.compress(b"".join(orjson.dumps(p) + b"\n" for p in PROFILES))
    path = tmp_path / "profiles.ndjson.gz"
    path.write_bytes(whole[: len(whole) * 6 // 10])
    return path


def array_cut_short(tmp_path: Path) -> Path:
    whole = orjson.dumps(PROFILES, option=orjson.OPT_INDENT_2)
    path = tmp_path / "profiles.json"
    path.write_bytes(whole[: len(whole) * 6 // 10])
    return path


@pytest.mark.parametrize("cut_short", [gzip_cut_short, array_cut_short])
def test_records_before_a_read_error_are_sent_once_and_the_error_says_where(
    tmp_path: Path, mixpanel_emulator: Emulator, cut_short: Callable[[Path], Path]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = cut_short(tmp_path)
    checkpoint = tmp_path / "send.checkpoint"

    errors = []
    for _ in range(3):
        with pytest.raises(InputError) as stopped:
            backfill(config, [source], checkpoint=checkpoint, batch_size=128).run()
        errors.append(str(stopped.value))

    sent = Counter(r["$distinct_id"] for r in mixpanel_emulator.client.records("engage"))
    read = len(sent)
    assert read % 128, "the cut falls inside a chunk"
    assert set(sent.values()) == {1}, "each profile $add applied once, not once a run"
    assert orjson.loads(checkpoint.read_bytes())["files"].popitem()[1]["confirmed"] == read
    for error in errors:
        assert error.startswith(f"{source}: ")
        assert f"stopped at record {read} of {source} (counted from 0)" in error
        assert re.search(r"the records before it are sent and confirmed", error)
