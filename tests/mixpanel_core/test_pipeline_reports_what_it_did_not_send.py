"""What the pipeline tells ``mixpanel_delivered`` about a message it did not send, and what it
leaves out for a message sent again: a transport that cannot be built is a FAILED report (the
caller's exception alone leaves an observer counting deliveries short); a message dropped before
enrichment whose redaction fails is reported without it (never with the personal data redaction
was set to remove); ``submit(enrich=False)`` runs no enricher (a replayed record, redacted when
first sent, would be hashed twice)."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import ConfigError, DeliveryStatus, Pipeline, hookimpl
from mixpanel_core.config import TransportConfig, config_from_mapping
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Event
from mixpanel_core.testing import MemoryTransport, ReportCollector
from plugins.mixpanel_limits import MixpanelLimits
from plugins.super_properties import SuperProperties


class BrokenRedaction:
    """Registered under the name ``redaction``: its enricher fails on every message."""

    @hookimpl
    def mixpanel_enrich(self, message: Any) -> Any:
        raise RuntimeError("cannot redact this")


def _event(distinct_id: object = "user-1") -> Event:
    props = {"token": "tok", "distinct_id": distinct_id, "email": "ada@example.com"}
    return Event(freeze({"event": "E", "properties": props}, ""))


def test_a_transport_that_cannot_be_built_is_reported_failed_as_well_as_raised() -> None:
    observer = ReportCollector()
    transports = {"default": TransportConfig("no-such-transport")}
    pipeline = Pipeline([("observer", observer)], transports)
    message = _event()

    with pytest.raises(ConfigError):
        pipeline.submit(message)

    [report] = observer.reports
    assert (report.status, report.transport, report.message) == (
        DeliveryStatus.FAILED,
        "pipeline",
        message,
    )


def test_a_dropped_message_redaction_fails_on_is_reported_without_it() -> None:
    observer = ReportCollector()
    config = config_from_mapping({"pipeline": {"on_invalid": "drop"}})
    plugins = [("limits", MixpanelLimits()), ("redaction", BrokenRedaction()), ("o", observer)]
    pipeline = Pipeline(plugins, {"default": MemoryTransport()}, config)

    pipeline.submit(_event(distinct_id=None))  # refused by the limits, before enrichment

    [report] = observer.reports
    assert report.status is DeliveryStatus.DROPPED
    assert report.message is None, "never the message redaction was to clean"


def test_submit_without_enrichment_runs_no_enricher() -> None:
    memory = MemoryTransport()
    pipeline = Pipeline([("supers", SuperProperties({"app": "checkout"}))], {"default": memory})

    pipeline.submit(_event(), enrich=False)
    pipeline.submit(_event())

    first, second = (message.record["properties"] for message in memory.messages)
    assert "app" not in first
    assert second["app"] == "checkout"
