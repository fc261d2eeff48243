"""A FILE named twice on one command line (a shell glob and a name, or two links to one file) is
sent once, also without ``--checkpoint``: its records would otherwise go twice, and Mixpanel does
not deduplicate profile updates (an ``$add`` applied twice is a wrong total nobody notices). The
second naming says it was skipped, and the summary counts its records as confirmed before."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import write_config, write_ndjson

pytestmark = pytest.mark.integration


def test_a_file_named_twice_without_a_checkpoint_is_sent_once_and_said_skipped(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    adds = [{"$distinct_id": f"user-{n}", "$add": {"logins": 1}} for n in range(5)]
    source = write_ndjson(tmp_path / "logins.ndjson", adds)
    link = tmp_path / "same-logins.ndjson"
    link.symlink_to(source)

    code = main(["send", str(source), str(link), "--config", str(config)])

    assert code == 0
    arrived = [r["$distinct_id"] for r in mixpanel_emulator.client.records("engage")]
    assert arrived == [a["$distinct_id"] for a in adds]
    err = capsys.readouterr().err
    assert f"{link}: confirmed by an earlier run; skipped" in err
    assert (
        "sent 5 records from 2 file(s): 5 accepted, 0 rejected or invalid, 5 confirmed before"
        in err
    )
