"""A record Mixpanel rejects for a property whose name holds a lone surrogate (a file name
``os.fsdecode`` made, which ``wire.dumps`` writes as the escape the official SDK sends), against
the real broker and the emulator. The emulator answered it with a 500 (its answer could not be
encoded), and the forwarder's dead letter of it raised ``UnicodeEncodeError`` building the
reason header: the record could be neither delivered nor dead-lettered, and the forwarder
stopped on it at every start."""

from __future__ import annotations

import json
import time

import pytest

from mixpanel_core.forwarder.dead_letters import PREFIX
from mixpanel_core.kafka import headers

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration

NAME = "file\udcff.txt"


@pytest.fixture
def rig_partitions() -> int:
    return 1


def test_a_rejection_quoting_a_lone_surrogate_is_dead_lettered_and_the_partition_moves_on(
    rig: ForwardingRig,
) -> None:
    properties = {"token": "emulator-token", "distinct_id": "u1", "time": int(time.time()) - 10}
    # Nested deeper than Mixpanel's three levels: refused, and the reason names the property.
    nested = {NAME: {"a": {"b": {"c": {"d": 1}}}}, "$insert_id": "nested"}
    value = json.dumps({"event": "E", "properties": {**properties, **nested}}).encode()
    rig.produce_raws([value], [(headers.ENDPOINT, b"track")])
    after = rig.produce_events(2, prefix="after")

    rig.run_until_committed(rig.write_config(plugins=[]), {0: 3})
    # The emulator keeps the valid records of a refused /track request, as Mixpanel does, so
    # those resent once the refused record was found arrive twice (the same $insert_id).
    assert set(rig.delivered_insert_ids()) == set(after)
    [letter] = rig.dead_letters(1)
    kept = dict(letter.headers)
    assert kept[PREFIX + "stage"] == b"delivery"
    assert b"properties.file\\udcff.txt.a.b.c" in kept[PREFIX + "reason"]
    assert letter.value == value
