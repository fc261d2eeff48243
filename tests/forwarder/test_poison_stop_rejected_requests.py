"""``on_poison = "stop"`` on records Mixpanel rejects in a delivery, against the real broker and
the emulator: the skip the stop's message advises sends nothing of the request again.

Mixpanel answers ``status: 0`` for a whole ``/engage`` request holding one invalid record, keeps
the valid ones and does not say which it refused; the client cannot resend them (an ``$add``
would be applied twice), so it reports them all REJECTED. The forwarder stopped at the
request's first record and advised skipping it alone, "nothing before it is lost": an operator
who followed the advice got the request's other records sent again, and their ``$add`` applied
again, once per restart. And when Mixpanel rejected one ``/track`` event alone (the client sends
the halves of the request again until the refused event stands alone), the events after it in
the request were delivered, but the skip to the offset after it sent them again.
"""

from __future__ import annotations

import collections
import json
import socket
import time

import pytest

from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python

from ..ingestion.scripted import ScriptedServer, answer, raw
from .conftest import ForwardingRig, error_line, track_event

pytestmark = pytest.mark.integration

BATCH = 10
"""Offsets 0..9 go out in one request; 10..12 after it."""
RECORDS = BATCH + 3
REFUSED = 3
"""The record whose token the emulator refuses: it answers status 0 for the whole request."""


@pytest.fixture
def rig_partitions() -> int:
    """One partition: a record's offset is its place in the order produced."""
    return 1


def _profile_update(i: int) -> bytes:
    token = "not-the-project-token" if i == REFUSED else "emulator-token"
    return json.dumps(
        {"$token": token, "$distinct_id": f"person-{i}", "$add": {"visits": 1}}
    ).encode()


def _applied(rig: ForwardingRig) -> dict[str, int]:
    """How many times the emulator applied each person's update."""
    records = rig.emulator.client.records("engage")
    return dict(collections.Counter(record["$distinct_id"] for record in records))


def test_a_request_rejected_whole_is_one_stop_and_the_advised_skip_sends_none_of_it_again(
    rig: ForwardingRig,
) -> None:
    rig.produce_raws([_profile_update(i) for i in range(RECORDS)], [(headers.ENDPOINT, b"engage")])
    # A full batch at once: offsets 0..9 in one request, 10..12 left buffered behind it.
    config = rig.stop_config(batch_records=BATCH, linger=0.2)

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    where = f"{rig.topic}[0]"
    error = error_line(stderr)
    assert f"stopping at {where}@0 (delivery)" in error, error
    assert f"{BATCH - 1} more records of {where}, up to offset {BATCH - 1}" in error, error
    assert "it may already have applied some of its records" in error, error
    assert f"Skip them all by committing offset {BATCH} on {where}" in error, error
    assert "nothing before them is lost" in error, error
    applied = {f"person-{i}": 1 for i in range(BATCH) if i != REFUSED}
    assert _applied(rig) == applied, "the emulator kept the valid records of the request"
    assert rig.committed() == {0: None}, "nothing before the request"

    # The operator follows the advice.
    rig.commit(BATCH)
    code, stderr = rig.run_until_caught_up(rig.stop_config(linger=0.2))

    assert code == 0, stderr
    applied.update({f"person-{i}": 1 for i in range(BATCH, RECORDS)})
    assert _applied(rig) == applied, "each update applied once: none of the request sent again"
    assert rig.committed() == {0: RECORDS}


def test_the_advised_skip_of_an_event_rejected_alone_goes_past_its_delivered_batch_mates(
    rig: ForwardingRig,
) -> None:
    rig.produce_raws(
        [track_event(i, REFUSED) for i in range(RECORDS)], [(headers.ENDPOINT, b"track")]
    )
    config = rig.stop_config(batch_records=BATCH, linger=0.2)

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    where = f"{rig.topic}[0]"
    error = error_line(stderr)
    assert f"stopping at {where}@{REFUSED} (delivery)" in error, error
    assert "same answer" not in error, "rejected alone"
    delivered = [f"id-{i}" for i in range(BATCH) if i != REFUSED]
    # The halves sent again make several sends of some events: only the set is checked here.
    first_run = collections.Counter(rig.delivered_insert_ids())
    assert sorted(first_run) == delivered, "the request's other events"
    assert rig.committed() == {0: REFUSED}
    assert f"skip it by committing offset {BATCH} on {where}" in error, error
    assert f"offsets {REFUSED + 1} to {BATCH - 1} after it were delivered already" in error

    rig.commit(BATCH)
    code, stderr = rig.run_until_caught_up(rig.stop_config(linger=0.2))

    assert code == 0, stderr
    sent_again = collections.Counter(rig.delivered_insert_ids()) - first_run
    assert sent_again == {f"id-{i}": 1 for i in range(BATCH, RECORDS)}, "none of the request"
    assert rig.committed() == {0: RECORDS}


@pytest.mark.parametrize("rig_partitions", [2])
def test_a_record_alone_on_its_partition_in_a_refused_request_is_advised_skipped(
    rig: ForwardingRig,
) -> None:
    """Partition 0 holds two valid updates and the refused one, partition 1 one valid update;
    all four go in one request, which Mixpanel answers status 0 (keeping the three valid
    ones). Partition 1's record was advised "Fix it and start again": nothing was wrong with
    it, and starting again applied its $add twice (review R56 F2). Now the advice is to skip
    it, and following it applies nothing again."""
    producer = kafka_python().KafkaProducer(bootstrap_servers=rig.bootstrap)
    for partition, update in [(0, 0), (0, REFUSED), (0, 2), (1, 4)]:
        producer.send(
            rig.topic,
            value=_profile_update(update),
            partition=partition,
            headers=[(headers.ENDPOINT, b"engage")],
        ).get(30)
    producer.close(10)

    code, stderr = rig.run_until_caught_up(rig.stop_config(batch_records=4, linger=0.2))

    assert code == 1, stderr
    error = error_line(stderr)
    alone = f"{rig.topic}[1]"
    assert f"stopping at {alone}@0 (delivery)" in error, error
    assert f"Skip it by committing offset 1 on {alone}" in error, error
    assert "if this one is valid it was applied" in error, error
    assert "Fix it and start again" not in error.split(f"stopping at {alone}@0")[1], error
    assert _applied(rig) == {"person-0": 1, "person-2": 1, "person-4": 1}

    # The operator follows the advice on both partitions.
    rig.commit(3, partition=0)
    rig.commit(1, partition=1)
    code, stderr = rig.run_until_caught_up(rig.stop_config(linger=0.2))

    assert code == 0, stderr
    assert _applied(rig) == {"person-0": 1, "person-2": 1, "person-4": 1}, "none applied again"


def _unanswered(sock: socket.socket) -> None:
    """Reads the request (the handler did) and answers nothing within the read timeout."""
    time.sleep(1.5)
    raise ConnectionAbortedError  # ends the handler, which closes the socket


_REFUSED_BY_NAME = {
    "engage": (
        _profile_update(REFUSED),
        answer(raw("200 OK", b'{"status": 0, "error": "$token: not this project\'s"}')),
    ),
    "import": (
        json.dumps(
            {
                "event": "e",
                "properties": {
                    "token": "emulator-token",
                    "distinct_id": "p1",
                    "time": int(time.time()) - 100,
                    "$insert_id": "abc",
                },
            }
        ).encode(),
        answer(
            raw(
                "400 Bad Request",
                json.dumps(
                    {
                        "code": 400,
                        "error": "some data points in the request failed validation",
                        "status": "Bad Request",
                        "num_records_imported": 0,
                        "failed_records": [
                            {
                                "index": 0,
                                "insert_id": "abc",
                                "field": "properties.time",
                                "message": "'properties.time' is invalid",
                            }
                        ],
                    }
                ).encode(),
                "Content-Type: application/json",
            )
        ),
    ),
}


@pytest.mark.parametrize("endpoint", ["engage", "import"])
def test_a_record_refused_by_name_after_an_unanswered_attempt_is_advised_fixed(
    rig: ForwardingRig, endpoint: str
) -> None:
    """Refused alone (a status 0 for a one-record request; a strict /import 400 naming it),
    after a first attempt that went unanswered: its report says maybe_applied, as an
    unanswered attempt may have been applied, but it is no record of a request refused in
    part. It was advised skipped as one, "if this one is valid it was applied", and an
    operator following that lost it (review R58 F1)."""
    record, refusal = _REFUSED_BY_NAME[endpoint]
    rig.produce_raws([record], [(headers.ENDPOINT, endpoint.encode())])
    with ScriptedServer([_unanswered, refusal]) as server:
        config = rig.stop_config(http={"read_timeout": 0.5}, linger=0.2)
        config.write_text(config.read_text().replace(rig.emulator.base_url, server.base_url))
        code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    error = error_line(stderr)
    assert len(server.requests) == 2, error
    assert "Fix it and start again" in error, error
    assert "if this one is valid it was applied" not in error, error
