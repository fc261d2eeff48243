"""An inner transport whose ``send`` raises ``DeliveryError`` for a message it never reported:
the sender reports that message FAILED, once; one it did report keeps that one report.

The sender took a ``DeliveryError`` as "already reported" (mixpanel-core's ``http`` transport
reports, then raises it), so a third-party transport raising one without reporting left its
message with no outcome at all: the owner's hook never heard of it, and the counts called it
neither accepted nor failed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from inner_raises_support import Outcome, config, outcomes, raising_types, reported, track, written
from inner_transports import OWN_REASON, UNLUCKY
from mp_workers import config_for, observed_client

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.usefixtures(raising_types.__name__)

NAMES = ["Lucky", UNLUCKY, "Lucky", UNLUCKY, "Lucky"]
LUCKY = [f"id-{i}" for i, name in enumerate(NAMES) if name != UNLUCKY]
UNLUCKY_IDS = [f"id-{i}" for i, name in enumerate(NAMES) if name == UNLUCKY]


def test_a_delivery_error_without_a_report_is_reported_failed_once(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out, raises="delivery"))
    track(client, NAMES)

    assert client.close(timeout=30) == []
    assert written(out) == LUCKY
    assert reported(counter) == sorted(LUCKY + UNLUCKY_IDS)  # one report each
    failed = {i: outcomes(counter)[i] for i in UNLUCKY_IDS}
    assert {i: (status, where) for i, (status, where, _) in failed.items()} == {
        i: ("failed", "default") for i in UNLUCKY_IDS
    }
    assert all("Mixpanel refused it" in (reason or "") for _, _, reason in failed.values())
    supervisor = client.pipeline.transport("default").supervisor  # type: ignore[attr-defined]
    assert supervisor.counts == {"accepted": len(LUCKY), "failed": len(UNLUCKY_IDS)}
    assert supervisor.unaccounted == 0


def test_a_delivery_error_after_its_own_report_keeps_that_report_alone(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out, raises="delivery", reports_first="failed"))
    track(client, NAMES)

    assert client.close(timeout=30) == []
    assert reported(counter) == sorted(LUCKY + UNLUCKY_IDS)  # one report each
    expected: dict[str | None, Outcome] = {i: ("accepted", "archive", None) for i in LUCKY}
    expected |= {i: ("failed", "archive", OWN_REASON) for i in UNLUCKY_IDS}
    assert outcomes(counter) == expected


def test_mixpanel_core_s_own_http_refusing_keeps_its_one_report(
    mixpanel_emulator: Emulator,
) -> None:
    """``http`` reports a message Mixpanel did not accept, then raises ``DeliveryError``."""
    mixpanel_emulator.client.fail_next(2, 500)
    direct = {"type": "http", "max_retries": 0}
    client, counter = observed_client(
        config_for(mixpanel_emulator.base_url, direct, batch_size=1, start_method="fork")
    )
    track(client, ["First", "Second", "Third"])

    assert client.close(timeout=30) == []
    assert reported(counter) == ["id-0", "id-1", "id-2"]  # one report each
    assert {i: (status, where) for i, (status, where, _) in outcomes(counter).items()} == {
        "id-0": ("failed", "direct"),
        "id-1": ("failed", "direct"),
        "id-2": ("accepted", "direct"),
    }
