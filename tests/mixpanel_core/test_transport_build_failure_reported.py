"""A transport that cannot be built when the first message needs it (a broker down at start):
the caller got the error, but nothing observing deliveries heard of the message (a counter of
FAILED reports stayed at 0 while every track() failed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import TransportError
from mixpanel_core.hookspecs import hookimpl
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.testing import install_distribution

UNREACHABLE = """
from mixpanel_core.errors import TransportError


class Unreachable:
    @classmethod
    def from_config(cls, options, context):
        raise TransportError("cannot reach the broker at kafka:9092")
"""


class Observer:
    def __init__(self) -> None:
        self.reports: list[DeliveryReport] = []

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        self.reports.append(report)


def test_a_message_whose_transport_cannot_be_built_is_reported_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_distribution(
        tmp_path,
        "acme-unreachable",
        {"mixpanel_core.transports": {"unreachable": "acme_unreachable:Unreachable"}},
        {"acme_unreachable": UNREACHABLE},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = config_from_mapping({"transports": {"bus": {"type": "unreachable"}}})
    observer = Observer()
    pipeline = Pipeline([("observer", observer)], config.transports, config)
    client = Mixpanel("token", config=config, pipeline=pipeline)
    try:
        with pytest.raises(TransportError, match="cannot reach the broker"):
            client.track("u1", "Signed up")
    finally:
        sys.modules.pop("acme_unreachable", None)  # imported from tmp_path: not for others

    [report] = observer.reports
    assert report.status is DeliveryStatus.FAILED
    assert report.message is not None
    assert report.message.record["event"] == "Signed up"
    assert "cannot reach the broker" in (report.reason or "")
