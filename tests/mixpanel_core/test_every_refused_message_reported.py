"""One rule for observers: every message the pipeline does not send, the caller getting the
error, is reported ``FAILED`` by the transport ``pipeline``: a transport that cannot be built
and a router's answer naming none were, but a validator, enricher or router that raised (or
answered a wrong type), or a router finding no route, was not, and observers counting
outcomes lost those messages. A report of a message refused as the caller made it (a
validator or enricher failed) carries it as the ``redaction`` plugin makes it."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import ConfigError, Message, Mixpanel, Pipeline, PluginError, hookimpl
from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.testing import MemoryTransport, ReportCollector


class ValidatorRaises:
    @hookimpl
    def mixpanel_validate(self, message: Message) -> list[Any]:
        raise KeyError("plan")


class EnricherRaises:
    @hookimpl
    def mixpanel_enrich(self, message: Message) -> Message:
        raise KeyError("plan")


class EnricherAnswersADict:
    @hookimpl
    def mixpanel_enrich(self, message: Message) -> object:
        return {"event": "x"}


class RouterRaises:
    @hookimpl
    def mixpanel_route(self, message: Message, transports: Any) -> list[str]:
        raise KeyError("plan")


class RouterFindsNoRoute:
    @hookimpl
    def mixpanel_route(self, message: Message, transports: Any) -> list[str]:
        raise ConfigError("routes: no route takes event messages")


PLUGINS = [
    ValidatorRaises,
    EnricherRaises,
    EnricherAnswersADict,
    RouterRaises,
    RouterFindsNoRoute,
]


def client_with(plugin: object, **plugins: Any) -> tuple[Mixpanel, ReportCollector, Any]:
    collector = ReportCollector()
    transport = MemoryTransport()
    config = config_from_mapping({"plugins": plugins})
    pipeline = Pipeline.from_config(
        config,
        transports={"default": transport},
        extra_plugins=[("mine", plugin), ("reports", collector)],
    )
    return Mixpanel("tok", pipeline=pipeline), collector, transport


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda cls: cls.__name__)
def test_a_message_not_sent_for_a_plugins_failure_is_reported_failed(plugin: type) -> None:
    client, collector, transport = client_with(plugin())

    with pytest.raises((PluginError, ConfigError)) as caught:
        client.track("user-1", "Ev", {"email": "a@example.com"})

    [report] = collector.reports
    assert (report.status, report.transport) == (DeliveryStatus.FAILED, "pipeline")
    assert report.reason == str(caught.value)
    assert report.message is not None
    assert report.message.properties["email"] == "a@example.com"
    assert transport.messages == []


@pytest.mark.parametrize("plugin", [ValidatorRaises, EnricherRaises], ids=lambda c: c.__name__)
def test_a_message_refused_as_made_is_reported_as_redaction_makes_it(plugin: type) -> None:
    client, collector, _ = client_with(
        plugin(), enabled=["redaction"], redaction={"drop": ["email"]}
    )

    with pytest.raises(PluginError):
        client.track("user-1", "Ev", {"email": "a@example.com"})

    [report] = collector.reports
    assert report.status is DeliveryStatus.FAILED
    assert report.message is not None
    assert "email" not in report.message.properties


class AddsAPlan:
    @hookimpl
    def mixpanel_enrich(self, message: Message) -> Message:
        return message.with_properties({"plan": "pro"})


class ValidatorRaisesOnAPlan:
    @hookimpl
    def mixpanel_validate(self, message: Message) -> list[Any]:
        if "plan" in message.properties:
            raise KeyError("plan")
        return []


def test_a_validator_raising_on_the_enriched_message_has_it_reported_failed() -> None:
    """Review R72 F1: a message an enricher changed is validated again, and a validator that
    raised then gave the caller the error but its observers no report."""
    collector = ReportCollector()
    transport = MemoryTransport()
    pipeline = Pipeline(
        [("enrich", AddsAPlan()), ("check", ValidatorRaisesOnAPlan()), ("reports", collector)],
        {"default": transport},
    )

    with pytest.raises(PluginError) as caught:
        Mixpanel("tok", pipeline=pipeline).track("user-1", "Ev")

    [report] = collector.reports
    assert (report.status, report.transport) == (DeliveryStatus.FAILED, "pipeline")
    assert report.reason == str(caught.value)
    assert report.message is not None
    assert report.message.properties["plan"] == "pro"  # the message the validator was given
    assert transport.messages == []
