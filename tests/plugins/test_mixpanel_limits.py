"""The limits validator refuses what Mixpanel would refuse, naming the field and the rule."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from mixpanel_core import Mixpanel, ValidationError
from mixpanel_core.testing import MemoryTransport


@pytest.fixture
def client() -> Mixpanel:
    return Mixpanel("token", MemoryTransport())


def fields_of(error: ValidationError) -> set[str]:
    return {p.field for p in error.problems}


@pytest.mark.parametrize(
    ("call", "field", "rule"),
    [
        (lambda mp: mp.track("u-1", 42), "event", "must be a non-empty string"),
        (lambda mp: mp.track("u-1", ""), "event", "must be a non-empty string"),
        (lambda mp: mp.track(None, "E"), "properties.distinct_id", "is required"),
        (lambda mp: mp.track("undefined", "E"), "properties.distinct_id", "placeholder"),
        (lambda mp: mp.track(" NULL ", "E"), "properties.distinct_id", "placeholder"),
        (
            lambda mp: mp.track("00000000-0000-0000-0000-000000000000", "E"),
            "properties.distinct_id",
            "placeholder",
        ),
        (lambda mp: mp.track(["u"], "E"), "properties.distinct_id", "must be a string"),
        (
            lambda mp: mp.track("u-1", "E", {"s": {1, 2}}),
            "properties.s",
            "cannot be carried by JSON",
        ),
        (
            lambda mp: mp.track("u-1", "E", {"o": object()}),
            "properties.o",
            "cannot be carried by JSON",
        ),
        (
            lambda mp: mp.track("u-1", "E", {"n": math.nan}),
            "properties.n",
            "not a finite number",
        ),
        (
            lambda mp: mp.track("u-1", "E", {"n": [math.inf]}),
            "properties.n[0]",
            "not a finite number",
        ),
        (
            lambda mp: mp.track("u-1", "E", {(1, 2): "a"}),
            "properties[(1, 2)]",
            "keys must be strings, finite numbers, booleans or None",
        ),
        (
            lambda mp: mp.track("u-1", "E", {f"p{i}": i for i in range(260)}),
            "properties",
            "fewer than 255",
        ),
        (
            lambda mp: mp.track("u-1", "E", {"l": list(range(300))}),
            "properties.l",
            "fewer than 255",
        ),
        (
            lambda mp: mp.track("u-1", "E", {"d": {"a": {"b": {"c": {"d": 1}}}}}),
            "properties.d.a.b.c",
            "nesting deeper than 3",
        ),
        (lambda mp: mp.track("u-1", "E", {"big": "x" * 1_100_000}), "record", "must be under 1 MB"),
        (
            lambda mp: mp.track("u-1", "E", {"time": time.time() - 6 * 86400}),
            "properties.time",
            "older than 5 days",
        ),
        (
            lambda mp: mp.track("u-1", "E", {"time": time.time() + 7200}),
            "properties.time",
            "more than 1 hour in the future",
        ),
        (
            lambda mp: mp.track("u-1", "E", {"time": "yesterday"}),
            "properties.time",
            "must be a number",
        ),
        (
            lambda mp: mp.track("u-1", "E", {"$insert_id": "not valid!"}),
            "properties.$insert_id",
            "1-36 characters",
        ),
        (
            lambda mp: mp.track("u-1", "E", {"$insert_id": "a" * 37}),
            "properties.$insert_id",
            "1-36 characters",
        ),
        (
            lambda mp: mp.import_data(None, "u-1", "Old", 1000),
            "properties.time",
            "before 1971-01-01",
        ),
        (
            lambda mp: mp.import_data(None, "u-1", "Old", time.time() + 7200),
            "properties.time",
            "future",
        ),
        (lambda mp: mp.alias("null", "orig"), "properties.alias", "placeholder"),
        (lambda mp: mp.merge(None, "a-1", "-1"), "properties.$distinct_ids[1]", "placeholder"),
        # Numbers are distinct ids on /track, not in a $merge: the emulator refuses them there.
        (
            lambda mp: mp.merge(None, 123, "a-1"),
            "properties.$distinct_ids[0]",
            "must be a non-empty string",
        ),
        (lambda mp: mp.people_set("", {"a": 1}), "$distinct_id", "placeholder"),
        (lambda mp: mp.people_set("u-1", ["not", "a", "dict"]), "$set", "must be an object"),
        (lambda mp: mp.people_increment("u-1", {"n": "one"}), "$add.n", "must be a number"),
        (lambda mp: mp.people_unset("u-1", "name"), "$unset", "must be a list"),
        (lambda mp: mp.group_set("", "acme", {"a": 1}), "$group_key", "non-empty string"),
        (lambda mp: mp.group_set("company", None, {"a": 1}), "$group_id", "non-empty string"),
        (lambda mp: mp.people_update({"$distinct_id": "u-1"}), "record", "needs one operation"),
        # Every operation of an update is checked, not only the first one found.
        (
            lambda mp: mp.people_update({"$distinct_id": "u-1", "$set": {"a": 1}, "$unset": "a"}),
            "$unset",
            "must be a list",
        ),
        (
            lambda mp: mp.people_update({"$distinct_id": "u-1", "$set": {}, "$add": {"n": "x"}}),
            "$add.n",
            "must be a number",
        ),
        # /groups takes no $add or $append: Mixpanel's group profiles have no such operation.
        (
            lambda mp: mp.group_update({"$group_key": "co", "$group_id": "acme", "$add": {"n": 1}}),
            "$add",
            "is not an operation of /groups",
        ),
        (
            lambda mp: mp.group_update(
                {"$group_key": "co", "$group_id": "acme", "$set": {"a": 1}, "$append": {"l": 1}}
            ),
            "$append",
            "is not an operation of /groups",
        ),
    ],
)
def test_bad_input_is_refused_naming_field_and_rule(
    client: Mixpanel, call: Any, field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        call(client)
    problems = {p.field: p.rule for p in caught.value.problems}
    assert field in problems, caught.value
    assert rule in problems[field]
    assert client.pipeline.transport("default").messages == []  # type: ignore[attr-defined]


def test_valid_messages_of_every_kind_pass(client: Mixpanel) -> None:
    client.track("u-1", "E", {"nested": {"a": [1, 2, {"b": 3}]}, "when_ms": 1})
    client.track("", "Anonymous event")
    client.track(12345, "Numeric id")
    client.track("u-1", "Millis", {"time": int(time.time() * 1000)})
    client.import_data(None, "u-1", "Old", 1_500_000_000)
    client.alias("new-1", "old-1")
    client.merge(None, "id-1", "id-2")
    client.people_set("u-1", {"a": 1})
    client.people_increment("u-1", {"n": 2.5})
    client.people_unset("u-1", ["a"])
    client.people_delete("u-1")
    client.group_set("company", 7, {"a": 1})
    client.track("u-1", "E", {"long": "x" * 1000})  # Mixpanel truncates; not an error
    assert len(client.pipeline.transport("default").messages) == 13  # type: ignore[attr-defined]


def test_every_problem_of_a_message_is_reported_at_once(client: Mixpanel) -> None:
    with pytest.raises(ValidationError) as caught:
        client.track("null", "E", {"time": "x", f"{'p'}": [0] * 300})
    assert fields_of(caught.value) >= {"properties.distinct_id", "properties.time", "properties.p"}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda mp: mp.alias("new-1", None), "properties.distinct_id"),
        (lambda mp: mp.merge(None, None, "u-2"), "properties.$distinct_ids[0]"),
        (lambda mp: mp.people_set(None, {"a": 1}), "$distinct_id"),
    ],
)
def test_a_missing_id_is_not_told_to_be_empty_where_empty_is_refused(
    client: Mixpanel, call: Any, field: str
) -> None:
    """``""`` is the id of an event with no user, on /track and /import only: a missing id of
    an alias, a merge or a profile is not advised to be one (the next call would be refused
    as a placeholder)."""
    with pytest.raises(ValidationError) as caught:
        call(client)
    problems = {p.field: p.rule for p in caught.value.problems}
    assert problems.get(field) in ("is required", "must be a non-empty string"), problems
    with pytest.raises(ValidationError, match='use ""'):
        client.track(None, "E")  # where "" is taken, the advice stays


@pytest.mark.parametrize("insert_id", ["-", "---", "a-b", "A1-", "x" * 36])
def test_insert_ids_of_dashes_letters_and_digits_pass(client: Mixpanel, insert_id: str) -> None:
    """Mixpanel's rule is 1-36 characters of ``A-Z a-z 0-9 -``: dashes alone are one too."""
    client.track("u-1", "E", {"$insert_id": insert_id})
    client.import_data(None, "u-1", "Old", 1_500_000_000, {"$insert_id": insert_id})
    assert len(client.pipeline.transport("default").messages) == 2  # type: ignore[attr-defined]


def test_errors_name_what_a_wrong_value_is_never_the_value(client: Mixpanel) -> None:
    """Under ``on_invalid = "drop"`` the error is logged: a wrong value (a dict of personal
    data passed as the event name) must not be copied into it, whatever its size."""
    personal = {"email": "ada@example.com", "notes": "x" * 10_000}
    with pytest.raises(ValidationError) as caught:
        client.track("u-1", personal)  # type: ignore[arg-type]
    assert str(caught.value) == "invalid event: event: must be a non-empty string, not an object"
    with pytest.raises(ValidationError) as caught:
        client.track(personal, "E")  # type: ignore[arg-type]
    assert "ada@example.com" not in str(caught.value)
    assert "properties.distinct_id: must be a string, not an object" in str(caught.value)
