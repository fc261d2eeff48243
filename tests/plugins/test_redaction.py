"""Redaction drops or hashes configured properties before anything leaves the process."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from mixpanel_core import ConfigError, Mixpanel, hookimpl
from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.messages import Event
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.testing import MemoryTransport


def make_client(options: dict[str, object]) -> tuple[Mixpanel, MemoryTransport]:
    config = config_from_mapping(
        {"plugins": {"enabled": ["redaction"], "redaction": options}}, {"SALT": "pepper"}
    )
    transport = MemoryTransport()
    return Mixpanel("token", transport, config=config), transport


def test_drops_and_hashes_event_and_profile_properties() -> None:
    client, transport = make_client({"drop": ["password"], "hash": ["email"], "salt": "${SALT}"})
    client.track("u-1", "Signed up", {"email": "a@b.c", "password": "hunter2", "plan": "pro"})
    client.people_set("u-1", {"email": "a@b.c", "password": "x", "name": "Ann"})
    event, person = transport.records()
    digest = hmac.new(b"pepper", b"a@b.c", hashlib.sha256).hexdigest()
    assert event["properties"]["email"] == digest
    assert "password" not in event["properties"]
    assert event["properties"]["plan"] == "pro"
    assert person["$set"] == {"email": digest, "name": "Ann"}


def test_hash_without_salt_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"plugins\.redaction\.salt: required"):
        make_client({"hash": ["email"]})


@pytest.mark.parametrize("salt", ["", "  ", "\t\n"])
def test_an_empty_or_blank_salt_is_a_config_error(salt: str) -> None:
    """A ${SALT} set to blank in a deployment: digests keyed with nothing, which anyone can
    recompute from a list of e-mail addresses. Said as a plain rule (a blank value was taken
    for a credential the error might quote, and the error ended "raised at FILE:LINE")."""
    with pytest.raises(ConfigError) as refused:
        make_client({"hash": ["email"], "salt": salt})
    assert str(refused.value) == "plugins.redaction.salt: must not be empty or blank"


@pytest.mark.parametrize(("salt", "kind"), [(5, "an integer"), ([1], "a list")])
def test_a_short_salt_of_the_wrong_type_is_said_plainly(salt: object, kind: str) -> None:
    """ "5" stands in some line number of almost every traceback: the error was taken for one
    that quotes the secret, lost its cause and ended "(raised at .../schema.py:250)"."""
    with pytest.raises(ConfigError) as refused:
        make_client({"hash": ["email"], "salt": salt})
    assert str(refused.value) == f"plugins.redaction.salt: must be a string (secret), not {kind}"


def test_a_property_both_dropped_and_hashed_is_a_config_error() -> None:
    """Which one was meant cannot be told: dropped, a hash counted on would be missing."""
    options = {"drop": ["email", "ip"], "hash": ["ip", "email"], "salt": "${SALT}"}
    with pytest.raises(ConfigError) as refused:
        make_client(options)
    assert str(refused.value) == (
        "plugins.redaction.hash: 'email', 'ip' also in drop; list each property in one of them"
    )


def test_salt_never_appears_in_the_plugin_repr() -> None:
    client, _ = make_client({"hash": ["email"], "salt": "${SALT}"})
    assert "pepper" not in repr(vars(client.plugin("redaction")))


class _Reports:
    def __init__(self) -> None:
        self.seen: list[DeliveryReport] = []

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        self.seen.append(report)


def test_a_message_dropped_as_the_caller_made_it_is_reported_redacted() -> None:
    """Under ``on_invalid = "drop"`` a message refused before enrichment was reported with
    the caller's record: the observers got the personal data redaction hashes or drops."""
    config = config_from_mapping(
        {
            "pipeline": {"on_invalid": "drop"},
            "plugins": {
                "enabled": ["mixpanel_limits", "redaction"],
                "redaction": {"drop": ["phone"], "hash": ["email"], "salt": "pepper"},
            },
        }
    )
    reports = _Reports()
    transport = MemoryTransport()
    pipeline = Pipeline.from_config(config, {"default": transport}, [("reports", reports)])
    client = Mixpanel("token", transport, config=config, pipeline=pipeline)

    client.track("anonymous", "Bad", {"email": "a@b.c", "phone": "555-0199"})  # placeholder id
    client.track("u-1", "Too big", {"email": "a@b.c", "n": 10**5000})  # no JSON writes it

    assert transport.records() == []
    assert [r.status for r in reports.seen] == [DeliveryStatus.DROPPED] * 2
    digest = hmac.new(b"pepper", b"a@b.c", hashlib.sha256).hexdigest()
    placeholder, too_big = reports.seen
    assert "a@b.c" not in repr(placeholder)
    assert "555-0199" not in repr(placeholder)
    for report in (placeholder, too_big):  # (no repr writes a 5,000-digit integer)
        assert isinstance(report.message, Event)
        assert report.message.properties["email"] == digest


def _digest(value: str) -> str:
    return hmac.new(b"pepper", value.encode(), hashlib.sha256).hexdigest()


def test_a_hashed_distinct_id_is_hashed_in_every_message_that_carries_the_user() -> None:
    """With ``distinct_id`` hashed, a profile's ``$distinct_id``, an alias's ``alias`` and a
    merge's ``$distinct_ids`` were sent as they were: the profile no longer met its user's
    events, and the identity the user meant to hide left the process (the Kafka key too)."""
    client, transport = make_client({"hash": ["distinct_id"], "salt": "${SALT}"})
    client.track("ada", "Signed up")
    client.people_set("ada", {"plan": "pro"})
    client.alias("ada-new", "ada")
    client.merge(None, "ada", "ada-device")
    client.group_set("company", "acme", {"size": 3})  # a group's id is not a user's
    event, person, alias, merge, group = transport.records()
    assert event["properties"]["distinct_id"] == _digest("ada")
    assert person["$distinct_id"] == _digest("ada")
    assert alias["properties"]["distinct_id"] == _digest("ada")
    assert alias["properties"]["alias"] == _digest("ada-new")
    assert merge["properties"]["$distinct_ids"] == [_digest("ada"), _digest("ada-device")]
    assert group["$group_id"] == "acme"
    keys = [m.key for m in transport.messages]
    assert keys[:2] == [_digest("ada"), _digest("ada")], "the Kafka key is the hashed id"


def test_a_list_is_hashed_element_by_element() -> None:
    """A list was hashed whole, from its repr(): a ``$union`` became one string, which
    Mixpanel refuses (``$union`` takes lists)."""
    client, transport = make_client({"hash": ["emails"], "salt": "${SALT}"})
    client.people_union("u-1", {"emails": ["a@b.c", "d@e.f"]})
    client.track("u-1", "Invited", {"emails": ["a@b.c"]})
    person, event = transport.records()
    assert person["$union"]["emails"] == [_digest("a@b.c"), _digest("d@e.f")]
    assert event["properties"]["emails"] == [_digest("a@b.c")]


def test_no_user_and_no_value_are_left_as_they_are() -> None:
    """Review R72 F2: ``""`` (Mixpanel's "no user") and ``None`` (a property cleared) were
    hashed like any value: every anonymous event of the project went out as one user, the
    digest of ``""``, and ``None`` became the digest of the text ``"None"``. Neither carries
    anything personal to hide."""
    client, transport = make_client({"hash": ["distinct_id", "email"], "salt": "${SALT}"})
    client.track("", "Page viewed", {"email": ""})
    client.track("ada", "Signed up", {"email": None})
    client.people_set("ada", {"email": None, "name": "Ann"})
    client.people_union("ada", {"email": ["a@b.c", None, ""]})
    anonymous, signed_up, person, union = transport.records()
    assert anonymous["properties"]["distinct_id"] == ""
    assert anonymous["properties"]["email"] == ""
    assert signed_up["properties"]["distinct_id"] == _digest("ada")
    assert signed_up["properties"]["email"] is None
    assert person["$set"] == {"email": None, "name": "Ann"}
    assert union["$union"]["email"] == [_digest("a@b.c"), None, ""]
