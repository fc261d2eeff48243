"""A ``mixpanel_validate`` hook that raises on a record, in the forwarder (run as in
production, against the real broker and the emulator, the plugin installed through a real
entry point): the record is refused as poison, so ``on_poison`` applies.

The plugin's error used to leave the forwarder at that record on every start: the records read
before it were neither delivered nor committed, it was not dead-lettered, and the error named
no topic, partition or offset to skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mixpanel_core.forwarder.dead_letters import PREFIX
from mixpanel_core.testing import install_distribution

from ..faulty_plugins import STRICT
from .conftest import ForwardingRig

pytestmark = pytest.mark.integration


BEFORE = 3
AFTER = 2


@pytest.fixture
def rig_partitions() -> int:
    """One partition: a record's offset is its place in the order produced."""
    return 1


@pytest.fixture
def strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installs the plugin ``strict`` where the forwarder subprocess finds it."""
    root = install_distribution(
        tmp_path / "site",
        "strict-validator",
        {"mixpanel_core.plugins": {"strict": "strict_validator:Strict"}},
        {"strict_validator": STRICT},
    )
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)
    )


def produce(rig: ForwardingRig) -> tuple[list[str], list[str]]:
    """``BEFORE`` events, the one the plugin fails on (offset ``BEFORE``), ``AFTER`` more."""
    before = rig.produce_events(BEFORE, prefix="before")
    client = rig.client()
    client.track("user-boom", "Played", {"boom": True, "$insert_id": "boom-1"})
    assert client.close(30) == []
    after = rig.produce_events(AFTER, prefix="after")
    return before, after


def test_the_record_a_validator_raises_on_is_dead_lettered_and_the_rest_delivered(
    rig: ForwardingRig, strict: None
) -> None:
    before, after = produce(rig)
    config = rig.write_config(plugins=["mixpanel_limits", "strict"])

    code, stderr = rig.run_until_caught_up(config)

    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(before + after)
    [letter] = rig.dead_letters(1)
    why = {k: v.decode() for k, v in letter.headers if k.startswith(PREFIX)}
    assert why[PREFIX + "stage"] == "decode"
    assert why[PREFIX + "source-offset"] == str(BEFORE)
    assert why[PREFIX + "reason"] == (
        "plugin 'strict' failed in mixpanel_validate: KeyError: 'plan'"
    )
    assert rig.committed() == {0: BEFORE + 1 + AFTER}


def test_under_on_poison_stop_it_stops_at_that_record_after_delivering_those_before(
    rig: ForwardingRig, strict: None
) -> None:
    before, _ = produce(rig)
    config = rig.stop_config()
    config.write_text(config.read_text() + '[plugins]\nenabled = ["mixpanel_limits", "strict"]\n')

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    assert f"stopping at {rig.topic}[0]@{BEFORE} (decode)" in stderr, stderr
    assert "plugin 'strict' failed in mixpanel_validate: KeyError: 'plan'" in stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(before)
    assert rig.committed() == {0: BEFORE}
