"""Redaction drops or hashes configured properties before anything leaves the process."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from mixpanel_core import ConfigError, Mixpanel
from mixpanel_core.config import config_from_mapping
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


def test_salt_never_appears_in_the_plugin_repr() -> None:
    client, _ = make_client({"hash": ["email"], "salt": "${SALT}"})
    assert "pepper" not in repr(vars(client.plugin("redaction")))
