"""Hook implementations run in the documented order, whatever pluggy's own.

docs/hooks.md: ``tryfirst`` ones, then the others, then ``trylast`` ones, each group in the
order of ``[plugins] enabled``; ``redaction``'s enricher and ``router``'s router after them all,
wherever they are listed. pluggy calls the last registered first and puts each ``trylast`` in
front of those before it, so ``trylast`` ones ran in reverse: a ``trylast`` enricher listed
before ``redaction`` ran after it (its PII left unredacted), and the built-in router answered
before a ``trylast`` router of yours listed before it.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core import Event, Message, Mixpanel, Pipeline, hookimpl
from mixpanel_core.config import RouteConfig, config_from_mapping
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import Problem
from mixpanel_core.testing import MemoryTransport, install_distribution, memory_client
from plugins.redaction import Redaction
from plugins.router import ConfigRouter


def recorder(name: str, calls: list[str], mark: str = "") -> object:
    """A plugin whose hooks record ``name``, each marked ``tryfirst``/``trylast`` by ``mark``."""
    impl = hookimpl(tryfirst=mark == "tryfirst", trylast=mark == "trylast")

    class Recorder:  # a class per plugin: the marks are on its functions
        @impl
        def mixpanel_validate(self, message: Message) -> list[Problem]:
            calls.append(f"validate {name}")
            return []

        @impl
        def mixpanel_enrich(self, message: Message) -> None:
            calls.append(f"enrich {name}")

        @impl
        def mixpanel_delivered(self, report: DeliveryReport) -> None:
            calls.append(f"delivered {name}")

    return Recorder()


def test_mixpanel_enrich_and_others_run_tryfirst_then_plain_then_trylast_in_listed_order() -> None:
    calls: list[str] = []
    marks = {
        "L1": "trylast",
        "L2": "trylast",
        "F1": "tryfirst",
        "N1": "",
        "L3": "trylast",
        "F2": "tryfirst",
        "N2": "",
    }
    listed = [(name, recorder(name, calls, mark)) for name, mark in marks.items()]
    pipeline = Pipeline(listed, {"default": MemoryTransport()})
    Mixpanel("tok", pipeline=pipeline).track("user-1", "E")
    pipeline.report(DeliveryReport(None, DeliveryStatus.DROPPED, "pipeline", "test"))
    expected = ["F1", "F2", "N1", "N2", "L1", "L2", "L3"]
    for hook in ("validate", "enrich", "delivered"):
        assert [c.split()[1] for c in calls if c.startswith(hook)] == expected, hook


class Contact:
    """A ``trylast`` enricher that adds personal data."""

    @hookimpl(trylast=True)
    def mixpanel_enrich(self, message: Message) -> Message | None:
        if isinstance(message, Event):
            return message.with_properties({"email": "alice@example.com", "ssn": "123-45-6789"})
        return None


@pytest.mark.parametrize("contact_first", [True, False], ids=["contact-listed-first", "after"])
def test_redaction_runs_after_a_trylast_enricher_wherever_either_is_listed(
    contact_first: bool,
) -> None:
    redaction = ("redaction", Redaction(drop=("email",), hash=("ssn",), salt="s3cr3t-salt"))
    contact = ("contact", Contact())
    transport = MemoryTransport()
    plugins = [contact, redaction] if contact_first else [redaction, contact]
    Mixpanel("tok", pipeline=Pipeline(plugins, {"default": transport})).track("user-1", "E")
    properties = transport.messages[0].record["properties"]
    assert "email" not in properties
    assert properties["ssn"] not in ("123-45-6789", None)


class EverythingToB:
    """A ``trylast`` router of the application's: every message to transport ``b``."""

    @hookimpl(trylast=True)
    def mixpanel_route(self, message: Message, transports: Sequence[str]) -> Sequence[str]:
        return ["b"]


@pytest.mark.parametrize("mine_first", [True, False], ids=["mine-listed-first", "after"])
def test_mixpanel_route_of_the_builtin_router_is_asked_after_a_trylast_router(
    mine_first: bool,
) -> None:
    router = ("router", ConfigRouter([RouteConfig(transport="a")]))
    mine = ("mine", EverythingToB())
    a, b = MemoryTransport(), MemoryTransport()
    plugins = [mine, router] if mine_first else [router, mine]
    Mixpanel("tok", pipeline=Pipeline(plugins, {"a": a, "b": b})).track("user-1", "E")
    assert (len(a.messages), len(b.messages)) == (0, 1)


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    source = textwrap.dedent(
        """
        from mixpanel_core import Event, hookimpl

        class Contact:
            @hookimpl(trylast=True)
            def mixpanel_enrich(self, message):
                if isinstance(message, Event):
                    return message.with_properties({"email": "alice@example.com"})
                return None

        class ToAudit:
            @hookimpl(trylast=True)
            def mixpanel_route(self, message, transports):
                return ["audit"] if "audit" in transports else None
        """
    )
    plugins = {"contact": "acme_order:Contact", "to_audit": "acme_order:ToAudit"}
    install_distribution(
        tmp_path, "acme-order", {"mixpanel_core.plugins": plugins}, {"acme_order": source}
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("acme_order", None)


def test_the_configured_order_holds_for_plugins_found_by_entry_point(acme: None) -> None:
    # The reviewer's case: listed before redaction, a trylast enricher's email went out as is.
    data: dict[str, Any] = {
        "plugins": {
            "enabled": ["contact", "redaction"],
            "redaction": {"drop": ["email"]},
        },
    }
    client, transport = memory_client(config=config_from_mapping(data))
    client.track("user-1", "E")
    assert "email" not in transport.messages[0].record["properties"]

    # And with [[routes]], a trylast router enabled before the built-in one is asked first.
    data = {
        "plugins": {"enabled": ["to_audit"]},
        "transports": {"direct": {"type": "memory"}, "audit": {"type": "memory"}},
        "routes": [{"transport": "direct"}],
    }
    pipeline = Pipeline.from_config(config_from_mapping(data))
    Mixpanel("tok", pipeline=pipeline).track("user-1", "E")
    audit, direct = pipeline.transport("audit"), pipeline.transport("direct")
    assert isinstance(audit, MemoryTransport)
    assert isinstance(direct, MemoryTransport)
    assert (len(audit.messages), len(direct.messages)) == (1, 0)


def test_a_plugin_given_without_a_name_runs_after_the_named_ones_of_its_group() -> None:
    """pluggy names it by its id, which the configured order does not know: no KeyError."""
    calls: list[str] = []
    named = recorder("named", calls)
    unnamed = recorder("unnamed", calls)
    pipeline = Pipeline([(None, unnamed), ("named", named)], {"default": MemoryTransport()})  # type: ignore[list-item]
    pipeline.submit(Event.from_record({"event": "E", "properties": {"distinct_id": "u"}}))
    assert calls[:2] == ["validate named", "validate unnamed"]
