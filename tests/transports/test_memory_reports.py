"""The ``memory`` transport's reports: ``memory_client`` wires them to the client's plugins; a
``MemoryTransport`` object passed in reports to the ``report`` it was built with."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import ConfigError
from mixpanel_core.testing import (
    MemoryTransport,
    ReportCollector,
    install_distribution,
    memory_client,
)
from mixpanel_core.transport import TransportContext

OUTCOMES_PLUGIN = '''\
"""Counts the delivery reports it is given, by status, in a list the test reads."""

from mixpanel_core import hookimpl

SEEN = []


class Outcomes:
    @hookimpl
    def mixpanel_delivered(self, report):
        SEEN.append((report.status.value, report.transport))
'''


def test_memory_client_reports_each_accepted_message_to_a_plugin_its_config_enables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = install_distribution(
        tmp_path,
        "outcomes",
        {"mixpanel_core.plugins": {"outcomes": "outcomes_plugin:Outcomes"}},
        {"outcomes_plugin": OUTCOMES_PLUGIN},
    )
    monkeypatch.syspath_prepend(str(root))
    config = Config(plugins=("mixpanel_limits", "outcomes"))

    client, transport = memory_client("tok", config)
    client.track("user-1", "Signed up")
    client.people_set("user-1", {"plan": "pro"})

    import outcomes_plugin  # type: ignore[import-not-found]  # written by install_distribution

    assert len(transport.messages) == 2
    assert outcomes_plugin.SEEN == [("accepted", "default"), ("accepted", "default")]


def test_memory_client_reports_to_plugins_given_as_objects() -> None:
    collector = ReportCollector()
    client, transport = memory_client(plugins=[("reports", collector)])
    client.track("user-1", "Signed up")

    assert [(r.message, r.status) for r in collector.reports] == [
        (transport.messages[0], DeliveryStatus.ACCEPTED)
    ]


def test_a_memory_transport_passed_in_reports_to_the_reporter_it_was_built_with() -> None:
    """Not to the client's plugins: ``Mixpanel(token, transport)`` uses the object as it is."""
    told: list[DeliveryReport] = []
    Mixpanel("tok", MemoryTransport(report=told.append)).track("user-1", "Signed up")
    assert [r.status for r in told] == [DeliveryStatus.ACCEPTED]


def test_a_key_given_to_the_memory_transport_is_refused_saying_it_takes_none() -> None:
    """It takes no options: the error said "the keys of [transports.out] are: " (an empty list)."""
    with pytest.raises(ConfigError) as caught:
        MemoryTransport.from_config({"size": 3}, TransportContext("out"))
    assert str(caught.value) == "transports.out.size: unknown key; [transports.out] takes none"
