"""Arguments typed ``Mapping`` take any mapping (review R9: after nested mappings were given to
the serializer as ``json`` does, ``people_set(id, MappingProxyType(...))`` was refused). Inside
an argument, a mapping that is not a dict goes to the serializer, as the official client's
``json`` does."""

from __future__ import annotations

from collections import UserDict
from types import MappingProxyType

import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.errors import NotJSONError
from mixpanel_core.testing import MemoryTransport


def test_every_mapping_argument_takes_any_mapping() -> None:
    transport = MemoryTransport()
    client = Mixpanel("tok", transport)
    client.track("u", "E", MappingProxyType({"plan": "pro"}))
    client.people_set("u", MappingProxyType({"a": 1}))
    client.people_increment("u", UserDict({"n": 1}))
    client.group_set("company", "c1", MappingProxyType({"p": "x"}))
    client.people_update(UserDict({"$distinct_id": "u", "$set": {"b": 2}}))
    records = [message.record for message in transport.messages]
    assert records[0]["properties"]["plan"] == "pro"
    assert [r.get("$set") or r.get("$add") for r in records[1:]] == [
        {"a": 1},
        {"n": 1},
        {"p": "x"},
        {"b": 2},
    ]


def test_a_mapping_inside_an_argument_is_refused_without_a_serializer_that_converts_it() -> None:
    client = Mixpanel("tok", MemoryTransport())
    with pytest.raises(NotJSONError, match=r"\$set\.m: a mappingproxy cannot be carried"):
        client.people_set("u", {"m": MappingProxyType({"a": 1})})
