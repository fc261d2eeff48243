"""Each hook spec, exercised through a real pipeline with real plugin objects.

The names of these tests start with the hook they pin; ``test_docs.py`` checks that every
hook spec has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from mixpanel_core import (
    ConfigError,
    DeliveryReport,
    DeliveryStatus,
    Event,
    Message,
    Mixpanel,
    Pipeline,
    PluginError,
    Problem,
    ValidationError,
    hookimpl,
)
from mixpanel_core.cli import main
from mixpanel_core.config import config_from_mapping, load_config
from mixpanel_core.testing import MemoryTransport
from mixpanel_core.transport import TransportContext, ignore_report


def client_with(
    *plugins: tuple[str, object], on_invalid: str = "raise"
) -> tuple[Mixpanel, MemoryTransport]:
    transport = MemoryTransport()
    config = config_from_mapping({"pipeline": {"on_invalid": on_invalid}})
    pipeline = Pipeline(list(plugins), {"default": transport}, config)
    return Mixpanel("token", pipeline=pipeline), transport


class RejectsBadWords:
    @hookimpl
    def mixpanel_validate(self, message: Message) -> list[Problem]:
        if isinstance(message, Event) and "bad" in message.name:
            return [Problem("event", "no bad words")]
        return []


class RequiresPlan:
    @hookimpl
    def mixpanel_validate(self, message: Message) -> list[Problem] | None:
        if isinstance(message, Event) and "plan" not in message.properties:
            return [Problem("properties.plan", "is required")]
        return None


def test_mixpanel_validate_collects_problems_from_every_plugin() -> None:
    client, transport = client_with(("words", RejectsBadWords()), ("plan", RequiresPlan()))
    with pytest.raises(ValidationError) as caught:
        client.track("user-1", "bad event")
    assert {p.field for p in caught.value.problems} == {"event", "properties.plan"}
    assert "event: no bad words" in str(caught.value)
    assert transport.messages == []


def test_mixpanel_validate_drop_policy_reports_instead_of_raising() -> None:
    seen: list[DeliveryReport] = []

    class Observer:
        @hookimpl
        def mixpanel_delivered(self, report: DeliveryReport) -> None:
            seen.append(report)

    client, transport = client_with(
        ("words", RejectsBadWords()), ("obs", Observer()), on_invalid="drop"
    )
    client.track("user-1", "bad event")
    client.track("user-1", "good event")
    assert [m.record["event"] for m in transport.messages] == ["good event"]
    assert [r.status for r in seen] == [DeliveryStatus.DROPPED]
    assert "no bad words" in str(seen[0].reason)


class AddsA:
    @hookimpl
    def mixpanel_enrich(self, message: Message) -> Message | None:
        if isinstance(message, Event):
            return message.with_properties({"order": (*message.properties.get("order", ()), "a")})
        return None


class AddsB:
    @hookimpl
    def mixpanel_enrich(self, message: Message) -> Message | None:
        if isinstance(message, Event):
            return message.with_properties({"order": (*message.properties.get("order", ()), "b")})
        return None


class PassesThrough:
    @hookimpl
    def mixpanel_enrich(self) -> None:
        return None


def test_mixpanel_enrich_runs_in_configured_order_each_seeing_the_last_output() -> None:
    client, transport = client_with(("b", AddsB()), ("none", PassesThrough()), ("a", AddsA()))
    client.track("user-1", "E")
    assert transport.messages[0].properties["order"] == ("b", "a")
    client2, transport2 = client_with(("a", AddsA()), ("b", AddsB()))
    client2.track("user-1", "E")
    assert transport2.messages[0].properties["order"] == ("a", "b")


def test_mixpanel_enrich_never_changes_the_message_it_receives() -> None:
    received: list[Message] = []

    class Spy:
        @hookimpl(tryfirst=True)
        def mixpanel_enrich(self, message: Message) -> None:
            received.append(message)

    client, transport = client_with(("a", AddsA()), ("spy", Spy()))
    client.track("user-1", "E")
    assert "order" not in received[0].record["properties"]
    assert transport.messages[0].properties["order"] == ("a",)
    with pytest.raises(TypeError):
        received[0].record["properties"]["x"] = 1  # type: ignore[index]


def test_mixpanel_enrich_failure_is_a_plugin_error_naming_the_plugin() -> None:
    class Broken:
        @hookimpl
        def mixpanel_enrich(self, message: Message) -> Message:
            raise KeyError("boom")

    client, transport = client_with(("broken-enricher", Broken()))
    with pytest.raises(PluginError) as caught:
        client.track("user-1", "E")
    assert caught.value.plugin == "broken-enricher"
    assert caught.value.hook == "mixpanel_enrich"
    assert transport.messages == []


def test_mixpanel_route_first_answer_wins_over_the_builtin_router() -> None:
    class PeopleToAudit:
        @hookimpl
        def mixpanel_route(
            self, message: Message, transports: Sequence[str]
        ) -> Sequence[str] | None:
            assert set(transports) == {"main", "audit"}
            return ["audit"] if message.kind == "people" else None

    main, audit = MemoryTransport(), MemoryTransport()
    config = config_from_mapping({})
    from mixpanel_core.config import RouteConfig
    from plugins.router import ConfigRouter

    catch_all = ConfigRouter([RouteConfig(transport="main")])
    pipeline = Pipeline(
        [("audit-router", PeopleToAudit()), ("router", catch_all)],
        {"main": main, "audit": audit},
        config,
    )
    client = Mixpanel("token", pipeline=pipeline)
    client.people_set("user-1", {"a": 1})
    client.track("user-1", "E")
    assert [m.kind for m in audit.messages] == ["people"]
    assert [m.kind for m in main.messages] == ["event"]


def test_mixpanel_route_without_any_answer_and_no_default_is_a_clear_error() -> None:
    pipeline = Pipeline([], {"a": MemoryTransport(), "b": MemoryTransport()})
    client = Mixpanel("token", pipeline=pipeline)
    with pytest.raises(ConfigError, match="no route applies"):
        client.track("user-1", "E")


def two_transports(tmp_path: Path, more: str = "") -> Path:
    """A file of two transports, neither named ``default``, with no route, and ``more``."""
    path = tmp_path / "mixpanel.toml"
    path.write_text(
        '[mixpanel]\ntoken = "t"\n[transports.a]\ntype = "console"\n'
        '[transports.b]\ntype = "console"\n' + more
    )
    return path


def test_several_transports_with_no_route_at_all_are_refused_when_the_file_is_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review S1: ``config check`` said "ok" for it, and then every message was refused."""
    path = two_transports(tmp_path)
    with pytest.raises(ConfigError, match=r"^routes: several transports are configured and no"):
        Mixpanel.from_config(path)
    assert main(["config", "check", str(path)]) != 0
    assert "no route applies" in capsys.readouterr().err
    path.write_text(path.read_text() + '[[routes]]\ntransport = "b"\n')
    assert main(["config", "check", str(path)]) == 0


def test_a_forwarders_file_needs_no_route(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R19: the forwarder sends through no router, and refused to start with the
    documented ``bus`` + ``direct`` file; ``config check`` takes such a file too, saying that
    an application sharing it would be refused (review R20)."""
    path = two_transports(tmp_path, '[forwarder]\nsource = "a"\n')
    assert main(["config", "check", str(path)]) == 0
    assert "note: for an application using this file (and send" in capsys.readouterr().err
    assert Pipeline.from_config(load_config(path)).transport_names == ("a", "b")


def test_the_send_command_refuses_a_file_that_routes_nothing_before_it_sends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R20: it printed "sent 1 records" and then failed at the first record."""
    path = two_transports(tmp_path)
    records = tmp_path / "events.ndjson"
    records.write_text('{"event": "e", "properties": {"distinct_id": "u", "token": "t"}}\n')
    assert main(["send", str(records), "--config", str(path)]) != 0
    said = capsys.readouterr()
    assert "no route applies" in said.err
    assert "or give the command --transport NAME" in said.err
    assert "sent 1" not in said.out + said.err


def test_mixpanel_delivered_sees_accepted_reports_and_survives_observer_errors() -> None:
    seen: list[DeliveryReport] = []

    class Observer:
        @hookimpl
        def mixpanel_delivered(self, report: DeliveryReport) -> None:
            seen.append(report)

    class Broken:
        @hookimpl
        def mixpanel_delivered(self, report: DeliveryReport) -> None:
            raise RuntimeError("observer bug")

    config = config_from_mapping({"transports": {"mem": {"type": "memory"}}})
    pipeline = Pipeline([("obs", Observer()), ("broken", Broken())], None, config)
    client = Mixpanel("token", pipeline=pipeline)
    client.track("user-1", "E")
    assert [(r.status, r.transport) for r in seen] == [(DeliveryStatus.ACCEPTED, "mem")]
    assert seen[0].message is not None
    assert seen[0].message.kind == "event"


class ContextRecorder:
    """A transport that keeps the context it was built with."""

    contexts: ClassVar[list[TransportContext]] = []

    @classmethod
    def from_config(cls, options: object, context: TransportContext) -> MemoryTransport:
        cls.contexts.append(context)
        return MemoryTransport(context.name, context.report)


def test_transports_are_told_whether_anything_reads_their_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without a mixpanel_delivered plugin, transports get ignore_report, which lets them skip
    # building reports of accepted messages; with one, every report reaches it.
    seen: list[DeliveryReport] = []

    class Observer:
        @hookimpl
        def mixpanel_delivered(self, report: DeliveryReport) -> None:
            seen.append(report)

    monkeypatch.setattr(ContextRecorder, "contexts", [])
    # Patched where transports are built: the pipeline's own ``load`` loads only plugins.
    monkeypatch.setattr(
        "mixpanel_core.named_transports.load", lambda group, name, path: ContextRecorder
    )
    config = config_from_mapping({"transports": {"rec": {"type": "recorder"}}})
    Pipeline([], None, config).transport("rec")
    Pipeline([("obs", Observer())], None, config).transport("rec")
    quiet, observed = ContextRecorder.contexts
    assert quiet.report is ignore_report
    assert not quiet.observed
    assert observed.observed
    observed.report(DeliveryReport(None, DeliveryStatus.DROPPED, "rec", "why"))
    assert [r.reason for r in seen] == ["why"]


def test_a_pipeline_subclass_that_overrides_report_hears_the_transports_reports() -> None:
    # Transports report to the observers directly (so that they do not keep the pipeline
    # alive); a subclass overriding ``report`` must still be the one they report to.
    from mixpanel_core.testing import ReportCollector

    class Counting(Pipeline):
        seen: ClassVar[list[DeliveryReport]] = []

        def report(self, report: DeliveryReport) -> None:
            Counting.seen.append(report)
            super().report(report)

    collector = ReportCollector()
    config = config_from_mapping(
        {"mixpanel": {"token": "t"}, "transports": {"m": {"type": "memory"}}}
    )
    client = Mixpanel("t", config=config, pipeline=Counting([("c", collector)], None, config))
    client.track("u", "Seen")
    assert len(Counting.seen) == 1
    assert Counting.seen == collector.reports
