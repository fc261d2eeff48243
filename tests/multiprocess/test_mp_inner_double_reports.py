"""An inner transport that reports a message itself and then raises: the message keeps that
one report.

mixpanel-core's own ``ConsumerTransport`` (an official-style consumer as a transport) reports a
message whose ``send`` raised FAILED, then raises it again. The sender reported such a message
FAILED a second time: the owner's ``mixpanel_delivered`` hook saw two outcomes of one message,
the counts went wrong (``{'accepted': -3, 'failed': 6}`` for three messages), and the surplus of
reports hid as many records that had none (``unaccounted`` 0 when two were lost). More reports
than records, however they come, is now logged at ERROR rather than clamped silently.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from inner_raises_support import (
    Outcome,
    client_for,
    config,
    outcomes,
    raising_types,
    reported,
    track,
    written,
)
from inner_transports import OWN_REASON, UNLUCKY
from mp_workers import observed_client

pytestmark = pytest.mark.usefixtures(raising_types.__name__)

NAMES = ["Lucky", UNLUCKY, "Lucky", "Lucky", UNLUCKY, "Lucky", UNLUCKY, "Lucky"]
LUCKY = [f"id-{i}" for i, name in enumerate(NAMES) if name != UNLUCKY]
UNLUCKY_IDS = [f"id-{i}" for i, name in enumerate(NAMES) if name == UNLUCKY]
ALL_IDS = sorted(LUCKY + UNLUCKY_IDS)


@pytest.mark.parametrize("forward", [True, False], ids=["forwarding", "not-forwarding"])
def test_a_consumer_transport_whose_consumer_raises_reports_each_message_once(
    tmp_path: Path, forward: bool
) -> None:
    """The inner transport is mixpanel-core's own ``ConsumerTransport`` around a consumer of
    the user's that raises ``ConnectionError``."""
    out = tmp_path / "out.jsonl"
    conf = config(out, "consumer")
    client, counter, transport = client_for(conf, forward)
    track(client, NAMES)

    assert client.close(timeout=30) == []
    assert written(out) == LUCKY
    counts = {"accepted": len(LUCKY), "failed": len(UNLUCKY_IDS)}
    assert transport.supervisor.counts == counts
    assert (transport.supervisor.unaccounted, transport.supervisor.failure) == (0, None)
    if forward:
        assert reported(counter) == ALL_IDS  # one report each
        lost = "the consumer lost its connection"
        expected: dict[str | None, Outcome] = {i: ("accepted", "archive", None) for i in LUCKY}
        expected |= {i: ("failed", "archive", lost) for i in UNLUCKY_IDS}
        assert outcomes(counter) == expected


@pytest.mark.parametrize("status", ["failed", "accepted"])
@pytest.mark.parametrize("forward", [True, False], ids=["forwarding", "not-forwarding"])
def test_a_send_that_reports_then_raises_keeps_its_own_report(
    tmp_path: Path, status: str, forward: bool
) -> None:
    """Whatever it reported (even ACCEPTED: a transport failing in its own bookkeeping after
    the delivery), that is the message's one outcome."""
    out = tmp_path / "out.jsonl"
    conf = config(out, reports_first=status)
    client, counter, transport = client_for(conf, forward)
    track(client, NAMES)

    assert client.flush(timeout=30) == []
    assert client.close(timeout=30) == []
    counts = {"accepted": len(LUCKY)}
    counts[status] = counts.get(status, 0) + len(UNLUCKY_IDS)
    assert transport.supervisor.counts == counts
    if forward:
        assert reported(counter) == ALL_IDS
        expected: dict[str | None, Outcome] = {i: ("accepted", "archive", None) for i in LUCKY}
        expected |= {i: (status, "archive", OWN_REASON) for i in UNLUCKY_IDS}
        assert outcomes(counter) == expected
        assert transport.supervisor.unaccounted == 0


def test_a_record_sink_that_reports_some_records_then_raises_fails_only_the_others(
    tmp_path: Path,
) -> None:
    """Per record: the one it reported keeps its report, the rest of the run gets the
    sender's."""
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out, "raising_sink", reports_first="failed"))
    names = ["Lucky"] * 5 + ["Lucky", UNLUCKY, "Lucky", "Lucky", "Lucky"] + ["Lucky"] * 5
    track(client, names)

    assert client.close(timeout=30) == []
    reason = (
        "the inner transport 'archive' raised OSError in send_records: [Errno 28] No space "
        "left on device"
    )
    delivered = [*range(5), *range(10, 15)]
    expected: dict[str | None, Outcome] = {
        f"id-{i}": ("accepted", "archive", None) for i in delivered
    }
    expected |= {f"id-{i}": ("failed", "default", reason) for i in (5, 7, 8, 9)}
    expected["id-6"] = ("failed", "archive", OWN_REASON)
    assert reported(counter) == sorted(f"id-{i}" for i in range(15))
    assert outcomes(counter) == expected
    supervisor: Any = client.pipeline.transport("default").supervisor  # type: ignore[attr-defined]
    assert supervisor.counts == {"accepted": 10, "failed": 5}
    assert (supervisor.unaccounted, supervisor.failure) == (0, None)


def test_a_second_report_no_longer_hides_a_record_without_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two messages reported (by the transport) then raised on, two held when its close
    raises: two records have no outcome, and the owner says so."""
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out, hold=True, close="raise", reports_first="failed"))
    transport: Any = client.pipeline.transport("default")
    track(client, [UNLUCKY, UNLUCKY, "Lucky", "Lucky"])

    with caplog.at_level(logging.ERROR):
        assert client.close(timeout=30) == []
    supervisor = transport.supervisor
    assert reported(counter) == ["id-0", "id-1"]
    assert supervisor.counts == {"failed": 2}
    assert supervisor.unaccounted == 2
    assert "2 records it took have no delivery report" in caplog.text


def test_more_reports_than_records_are_logged_not_hidden(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """An inner transport that reports each message twice: the owner and the sender each log
    it at ERROR, once; the counts stay sane (no negative, no record counted twice)."""
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out, report_twice=True))
    transport: Any = client.pipeline.transport("default")
    track(client, ["Lucky"] * 3)

    with caplog.at_level(logging.ERROR):
        assert client.close(timeout=30) == []
    supervisor = transport.supervisor
    assert counter.by_status == {"accepted": 6}  # the inner transport's own doing, passed on
    assert supervisor.counts == {"accepted": 3}
    assert supervisor.describe_unsettled().startswith("0 records it took have no delivery report")
    owner = "6 delivery reports for the 3 records it took: some record was reported more than once"
    assert caplog.text.count(owner) == 1
    sender = "6 delivery reports for 3 records taken: some record was reported more than once"
    assert capfd.readouterr().err.count(sender) == 1
