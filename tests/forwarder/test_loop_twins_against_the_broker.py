"""Real-broker twins of scenarios that test_loop and test_loop_stopping check with scripted
stand-ins for Kafka only. The forwarder runs as a subprocess against the session's broker and
the emulator; deliveries are counted by ``$insert_id`` through the emulator (duplicates
counted), offsets read from the group's commits on the broker.

- a record Mixpanel rejects (a strict ``/import`` 400 entry, a ``/track`` ``status: 0``) under
  ``on_poison = "stop"``, and the same record under the default ``on_poison``;
- a rejected record inside a call whose other credentials Mixpanel then refuses.

(A twin of a first shutdown commit refused because the group moved on without the forwarder
was here: its Mixpanel request held past ``max_poll_interval_ms`` made it drop out of the
group. It polls while a request is out now, so it no longer drops out that way, and no other
way found makes the embedded broker refuse that commit; test_loop_stopping checks the
behaviour with a scripted consumer.)
"""

from __future__ import annotations

import collections
import datetime
import time
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core.forwarder.dead_letters import PREFIX
from mixpanel_core.kafka.fixtures import read_records
from mixpanel_core.messages import Event, ImportEvent, Message
from transports.kafka import KafkaTransport

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
"""The project token the emulator knows."""
REVOKED_TOKEN = "revoked-token"
"""A project token the emulator does not know: ``/import`` authenticated by it gets a 401."""
OLD = 1_700_000_000
"""A ``time`` that ``/import`` takes (``/track`` would drop it silently: more than 5 days ago)."""
BAD_TIME = "not a time"
"""A ``time`` that ``/track`` refuses with ``status: 0``: not seconds since the epoch."""
ENDPOINTS = ["import", "track"]
REASONS = {
    "import": "properties.distinct_id: 'properties.distinct_id' is a placeholder value Mixpanel "
    'rejects; use the real user id, or "" for events with no user',
    "track": "1 of 1 records failed validation: record 0: properties.time: 'properties.time' "
    "is invalid: must be seconds or milliseconds since the epoch",
}
"""Mixpanel's (the emulator's) message for the rejected record, by endpoint."""


@pytest.fixture
def rig_partitions() -> int:
    """One partition: a record's offset is its place in the order produced."""
    return 1


# -- producing ------------------------------------------------------------------------------


def _import(insert_id: str, distinct_id: str = "user-1", token: str = TOKEN) -> Message:
    """An ``/import`` event; ``distinct_id="anonymous"`` (a placeholder) is one Mixpanel
    rejects in strict mode, naming ``properties.distinct_id``."""
    properties = {"token": token, "distinct_id": distinct_id, "time": OLD, "$insert_id": insert_id}
    return ImportEvent.from_record({"event": "Old purchase", "properties": properties})


def _track(insert_id: str, at: int | str | None = None) -> Message:
    """A ``/track`` event; ``at=BAD_TIME`` is one Mixpanel answers ``status: 0`` for."""
    when = int(time.time()) if at is None else at
    properties = {"token": TOKEN, "distinct_id": "user-1", "time": when, "$insert_id": insert_id}
    return Event.from_record({"event": "Played", "properties": properties})


def _produce(rig: ForwardingRig, messages: list[Message]) -> None:
    """Straight through the kafka transport, past the application's own checks (as an older
    or foreign producer might write them); every one acknowledged."""
    transport = KafkaTransport(rig.bootstrap, rig.topic)
    for message in messages:
        transport.send(message)
    assert transport.close(10) == []


def _produce_with_a_rejected_record(rig: ForwardingRig, endpoint: str) -> None:
    """Offsets 0-3: good-0, good-1, bad-2 (Mixpanel rejects it), good-3."""
    if endpoint == "import":
        bad = _import("bad-2", distinct_id="anonymous")
        good = [_import(f"good-{i}") for i in (0, 1, 3)]
    else:
        bad = _track("bad-2", at=BAD_TIME)
        good = [_track(f"good-{i}") for i in (0, 1, 3)]
    _produce(rig, [good[0], good[1], bad, good[2]])


# -- configuring and inspecting ----------------------------------------------------------------


def _config(
    rig: ForwardingRig,
    forwarder: dict[str, Any] | None = None,
    mixpanel: dict[str, Any] | None = None,
) -> Path:
    """The rig's config without the validation plugins (Mixpanel, not ``mixpanel_limits``,
    is to refuse the records); a key given as ``None`` is left out of the file."""
    path = rig.write_config(forwarder, mixpanel, plugins=[])
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.rstrip().endswith(" = null")))
    return path


def _counts(rig: ForwardingRig, endpoint: str) -> dict[str, int]:
    """How many times Mixpanel accepted each ``$insert_id`` (duplicates counted)."""
    return dict(collections.Counter(rig.emulator.client.insert_ids(endpoint)))


def _all_dead_letters(rig: ForwardingRig) -> list[Any]:
    """Every dead letter in the topic (read once the forwarder has exited)."""
    return read_records(rig.bootstrap, rig.dead_letter_topic, 100, timeout_ms=1500)


def _why(letter: Any) -> dict[str, str]:
    """A dead letter's ``dead-letter-*`` headers, without the prefix."""
    return {k[len(PREFIX) :]: v.decode() for k, v in letter.headers if k.startswith(PREFIX)}


# -- 1. a record Mixpanel rejects ------------------------------------------------------------

FIRST_RUN_COUNTS = {
    # One strict request: Mixpanel keeps the valid records and names the invalid one.
    "import": {"good-0": 1, "good-1": 1, "good-3": 1},
    # status: 0 names none: the four are sent, then halves [0, 1] and [2, 3], then [2] and
    # [3]; Mixpanel keeps the valid records of every request (counted once, by $insert_id).
    "track": {"good-0": 2, "good-1": 2, "good-3": 3},
}
RESENT_FROM_THE_REJECTED_RECORD = {
    # Read again from offset 2: [bad-2, good-3] ...
    "import": {"good-3": 1},
    # ... and, on /track, then [bad-2] and [good-3].
    "track": {"good-3": 2},
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_record_mixpanel_rejects_under_on_poison_stop_stops_the_forwarder_there_every_time(
    rig: ForwardingRig, endpoint: str
) -> None:
    """docs/forwarder.md, *Dead letters*: with on_poison = "stop" "the first poison or rejected
    record stops the forwarder with exit 1, naming its topic, partition, offset and reason, and
    neither it nor anything after it on its partition is committed"; *What it guarantees*: an
    offset is committed past records Mixpanel accepted, so good-0 and good-1 are. A restart
    reads bad-2 again and stops at it again; good-3, sent but never committed, is sent again
    (counted once by $insert_id)."""
    _produce_with_a_rejected_record(rig, endpoint)
    config = _config(rig, {"on_poison": "stop", "dead_letter_topic": None})

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    assert f"stopping at {rig.topic}[0]@2 (delivery): {REASONS[endpoint]}" in stderr, stderr
    assert "on_poison is 'stop'" in stderr
    assert rig.committed() == {0: 2}, "past good-0 and good-1, not past bad-2"
    assert _counts(rig, endpoint) == FIRST_RUN_COUNTS[endpoint]

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    assert f"stopping at {rig.topic}[0]@2 (delivery)" in stderr, stderr
    assert rig.committed() == {0: 2}
    expected = collections.Counter(FIRST_RUN_COUNTS[endpoint])
    expected.update(RESENT_FROM_THE_REJECTED_RECORD[endpoint])
    assert _counts(rig, endpoint) == dict(expected), "bad-2 never accepted"
    assert rig.emulator.client.stats()["unique_events"] == 3
    assert _all_dead_letters(rig) == [], "no dead-letter topic under on_poison = 'stop'"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_same_record_under_the_default_on_poison_is_dead_lettered_and_committed_past(
    rig: ForwardingRig, endpoint: str
) -> None:
    """docs/forwarder.md, *What it guarantees*: records Mixpanel rejects for good "go to the
    dead-letter topic and the partition moves on" (for /track, only the refused event, the
    others delivered); *Dead letters*: the dead letter keeps the original key, value and
    headers and adds the documented headers; on_poison defaults to "dead_letter"."""
    _produce_with_a_rejected_record(rig, endpoint)

    code, stderr = rig.run_until_caught_up(_config(rig))

    assert code == 0, stderr
    assert rig.committed() == {0: 4}, "past the rejected record, once its dead letter landed"
    assert _counts(rig, endpoint) == FIRST_RUN_COUNTS[endpoint], "bad-2 never accepted"
    assert rig.emulator.client.stats()["unique_events"] == 3
    [letter] = _all_dead_letters(rig)
    original = read_records(rig.bootstrap, rig.topic, 4)[2]
    assert (letter.key, letter.value) == (original.key, original.value)
    assert letter.headers[: len(original.headers)] == original.headers
    why = _why(letter)
    assert why.pop("reason") == REASONS[endpoint], "Mixpanel's message"
    stamped = datetime.datetime.fromisoformat(why.pop("time"))
    assert stamped.utcoffset() == datetime.timedelta(0)
    assert abs(time.time() - stamped.timestamp()) < 120
    # /import names the field in failed_records; /track's status: 0 answers HTTP 200 and
    # names none (docs/ingestion.md: REJECTED with "for strict /import, the field"). The
    # record went out in 1 request on /import, in 3 on /track (the four, a half, itself).
    by_endpoint = {
        "import": {"http-status": "400", "field": "properties.distinct_id", "attempts": "1"},
        "track": {"http-status": "200", "attempts": "3"},
    }
    assert why == {
        "source-topic": rig.topic,
        "source-partition": "0",
        "source-offset": "2",
        "stage": "delivery",
        "group": rig.group,
        **by_endpoint[endpoint],
    }


# -- 2. a rejected record inside a call that is then refused -----------------------------------


def test_a_rejected_record_inside_a_refused_call_is_dead_lettered_and_the_accepted_committed(
    rig: ForwardingRig,
) -> None:
    """With no credentials in [mixpanel], each /import record authenticates with its own
    project token (docs/ingestion.md, *Authentication for /import*), and records with
    different credentials go in different requests. The forwarder's one call sends the
    known token's records first (good-0, bad-1, good-2, good-4: a strict 400 naming bad-1),
    then revoked-3's, which Mixpanel refuses with 401.

    docs/forwarder.md, *Refused credentials stop it*: exit 1; what the refused delivery got
    accepted before the refusal (several credential groups, an earlier one accepted) is
    committed "and the ones Mixpanel rejected are dead-lettered" before the forwarder stops;
    "a partition's offset moves only past records that are all delivered or dead-lettered, so
    records after the first unsent one on their partition are read again too". So offset 3 is
    committed; the restart, its credentials fixed, sends revoked-3 and good-4 (again) only.
    """
    _produce(
        rig,
        [
            _import("good-0"),
            _import("bad-1", distinct_id="anonymous"),
            _import("good-2"),
            _import("revoked-3", token=REVOKED_TOKEN),
            _import("good-4"),
        ],
    )
    no_credentials = {
        "token": None,
        "service_account_username": None,
        "service_account_secret": None,
        "project_id": None,
    }

    code, stderr = rig.run_until_caught_up(_config(rig, mixpanel=no_credentials))

    assert code == 1, stderr
    assert "Mixpanel refused the project token" in stderr, stderr
    assert REVOKED_TOKEN not in stderr, "the credential kind is named, never the credential"
    assert rig.emulator.client.stats()["requests"]["import"] == {"400": 1, "401": 1}
    assert _counts(rig, "import") == {"good-0": 1, "good-2": 1, "good-4": 1}
    assert rig.committed() == {0: 3}, "past good-0, bad-1 (dead-lettered) and good-2"
    [letter] = _all_dead_letters(rig)
    why = _why(letter)
    assert (why["source-offset"], why["stage"]) == ("1", "delivery")
    assert (why["http-status"], why["field"]) == ("400", "properties.distinct_id")

    # The credentials fixed (the rig's service account authenticates every record).
    code, stderr = rig.run_until_caught_up(_config(rig))

    assert code == 0, stderr
    assert rig.committed() == {0: 5}
    assert _counts(rig, "import") == {"good-0": 1, "good-2": 1, "revoked-3": 1, "good-4": 2}
    assert len(_all_dead_letters(rig)) == 1, "bad-1 is not read, nor dead-lettered, again"
