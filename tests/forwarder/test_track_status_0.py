"""The forwarder against the real broker and the emulator: one /track event Mixpanel refuses
among many is dead-lettered alone, and its batch-mates are delivered and committed."""

from __future__ import annotations

import json
import re

import pytest

from mixpanel_core.forwarder.dead_letters import PREFIX
from mixpanel_core.kafka.fixtures import read_records
from mixpanel_core.messages import Event
from transports.kafka import KafkaTransport

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration


def test_one_refused_track_event_is_dead_lettered_alone_and_its_batch_mates_delivered(
    rig: ForwardingRig,
) -> None:
    """Mixpanel answers status 0 for the whole request and keeps its valid events: the
    forwarder must not dead-letter those as rejected, nor lose the refused one."""
    good = rig.produce_events(100)
    transport = KafkaTransport(rig.bootstrap, rig.topic)
    bad_time = {
        "event": "Played",
        "properties": {
            "token": "emulator-token",
            "distinct_id": "user-1",
            # Not seconds since the epoch: refused. (One older than 5 days would not do:
            # Mixpanel drops it silently and answers success.)
            "time": "yesterday",
            "$insert_id": "bad-time",
        },
    }
    transport.send(Event.from_record(bad_time))
    assert transport.close(10) == []
    good += rig.produce_events(100, prefix="late")

    # No validation plugin: Mixpanel is the one to refuse the event.
    code, stderr = rig.run_until_caught_up(rig.write_config(plugins=[]))

    assert code == 0, stderr
    assert set(rig.delivered_insert_ids()) == set(good)
    assert rig.emulator.client.stats()["unique_events"] == len(good)
    letters = read_records(rig.bootstrap, rig.dead_letter_topic, 2, timeout_ms=2000)
    assert [json.loads(r.value)["properties"]["$insert_id"] for r in letters] == ["bad-time"]
    why = {k: v.decode() for k, v in letters[0].headers if k.startswith(PREFIX)}
    assert why[PREFIX + "stage"] == "delivery"
    assert "properties.time" in why[PREFIX + "reason"], "Mixpanel's reason for that event"
    assert sum(o or 0 for o in rig.committed().values()) == 201
    [final] = re.findall(r"forwarder stopped: (.*)", stderr)
    assert "delivered=200 rejected=1 poison=0 dead_lettered=1" in final
