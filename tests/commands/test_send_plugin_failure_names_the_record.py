"""``send`` stopped by a plugin that raises on a record (installed through a real entry point,
against the emulator): the error names the record and its file, the summary does not count
it as sent, and a rerun with the checkpoint resumes before it.

It was counted ("sent 3 records ...: 2 accepted"), and the error named only the plugin.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator
from mixpanel_core.testing import install_distribution

from ..faulty_plugins import STRICT
from .conftest import TOKEN, events, write_config, write_ndjson

pytestmark = pytest.mark.integration


@pytest.fixture
def strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    site = install_distribution(
        tmp_path / "site",
        "strict-send",
        {"mixpanel_core.plugins": {"strict": "strict_send:Strict"}},
        {"strict_send": STRICT},
    )
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("strict_send", None)


def test_the_record_a_plugin_fails_on_is_named_and_not_counted_as_sent(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    strict: None,
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, plugins=["mixpanel_limits", "strict"])
    records = [*events(2), *events(1, start=2, boom=True), *events(2, start=3)]
    source = write_ndjson(tmp_path / "events.ndjson", records)
    checkpoint = tmp_path / "checkpoint.json"

    code = main(["send", str(source), "--config", str(config), "--checkpoint", str(checkpoint)])

    assert code == 1
    lines = capsys.readouterr().err.splitlines()
    [summary] = [line for line in lines if line.startswith("sent ")]
    assert summary.startswith("sent 2 records"), summary
    assert lines[-1] == (
        f"mixpanel-core: error: stopped at record 2 of {source} (counted from 0), not sent: "
        "plugin 'strict' failed in mixpanel_validate: KeyError: 'plan'; the records before "
        "it are confirmed: run the same command again to resume at it"
    )
    assert mixpanel_emulator.client.stats()["accepted"]["import"] == 2

    # The plugin fixed (here: disabled), the rerun resumes at that record, and sends none
    # of those before it again (they share its chunk: --batch-size is 1,000 by default).
    fixed = write_config(tmp_path, mixpanel_emulator, plugins=["mixpanel_limits"])
    assert main(["send", str(source), "--config", str(fixed), "--checkpoint", str(checkpoint)]) == 0
    stats = mixpanel_emulator.client.stats()
    assert stats["accepted"]["import"] == 5
    assert (stats["unique_events"], stats["duplicate_events"]) == (5, 0)


def test_a_record_no_route_takes_stops_the_run_after_confirming_those_before_it(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``[[routes]]`` that take only /engage, and an /import event among profile ``$add``s
    (review R42 F1, in ``send`` as in ``replay-dead-letters``): the ``$add``s before it were
    delivered as the transports closed but not checkpointed, so each rerun applied them again."""
    adds = [{"$token": TOKEN, "$distinct_id": f"user-{n}", "$add": {"visits": 1}} for n in range(4)]
    source = write_ndjson(tmp_path / "mixed.ndjson", [adds[0], adds[1], *events(1), adds[3]])
    checkpoint = tmp_path / "checkpoint.json"
    only_engage = '[[routes]]\nendpoints = ["engage"]\ntransport = "direct"\n'
    arguments = ["send", str(source), "--checkpoint", str(checkpoint)]

    for run in range(2):  # each run stops at the same record, applying nothing twice
        config = write_config(tmp_path, mixpanel_emulator, extra=only_engage)
        assert main([*arguments, "--config", str(config)]) == 1, run
        last = capsys.readouterr().err.splitlines()[-1]
        assert last.startswith(
            f"mixpanel-core: error: stopped at record 2 of {source} (counted from 0), not sent: "
            "routes: no route takes import messages"
        ), last
        assert last.endswith(
            "; the records before it are confirmed: run the same command again to resume at it"
        ), last

    assert main([*arguments, "--config", str(write_config(tmp_path, mixpanel_emulator))]) == 0
    profiles = [r["$distinct_id"] for r in mixpanel_emulator.client.records("engage")]
    assert sorted(profiles) == ["user-0", "user-1", "user-3"]
    assert len(mixpanel_emulator.client.records("import")) == 1
