"""The drop-in against the official package, call for call: what reaches a consumer, and what
is raised, must be what the official ``mixpanel`` gives for the same code."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
from collections import UserDict
from collections.abc import Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from unittest import mock

import mixpanel
import pytest

from mixpanel_core import ConfigError, compat
from mixpanel_core import Mixpanel as CoreMixpanel
from mixpanel_core.compat import DatetimeSerializer, Mixpanel, MixpanelException

from ..subprocesses import run_python

FIXED_TIME = round(time.time(), 3)  # recent: /track drops events older than 5 days


class Recorder:
    """A consumer that keeps each call's arguments: the JSON text and any credentials."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []

    def send(self, endpoint: str, json_message: str, *auth: Any) -> None:
        self.calls.append((endpoint, json_message, auth))


def _both(call: Any, **kwargs: Any) -> tuple[list[Any], list[Any]]:
    """The calls each client makes to its consumer for ``call(client)``, time and ids fixed."""
    sent = []
    for client_class in (mixpanel.Mixpanel, Mixpanel):
        recorder = Recorder()
        client = client_class("tok", consumer=recorder, **kwargs)
        client._now = lambda: FIXED_TIME
        client._make_insert_id = lambda: "0123456789abcdef0123456789abcdef"
        call(client)
        sent.append(
            [(e, _same_library(json.loads(text)), auth) for e, text, auth in recorder.calls]
        )
    return sent[0], sent[1]


def _same_library(record: dict[str, Any]) -> dict[str, Any]:
    # The one documented difference: $lib_version names this library's version.
    record.get("properties", {}).pop("$lib_version", None)
    return record


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param({7: "seven", 2.5: "x", False: "f", None: "n"}, id="non-string keys"),
        pytest.param([("plan", "pro"), ("n", 1)], id="pairs"),
        pytest.param({"big": 2**70 + 1, "small": -(2**65)}, id="integers beyond 64 bits"),
    ],
)
def test_track_sends_what_the_official_sends(properties: Any) -> None:
    official, ours = _both(lambda mp: mp.track("u-1", "E", properties))
    assert ours == official


def test_an_empty_api_secret_reaches_the_consumer_as_the_official_passes_it() -> None:
    official, ours = _both(lambda mp: mp.import_data("KEY", "u-1", "E", FIXED_TIME, api_secret=""))
    assert ours == official
    assert ours[0][2] == (("KEY", ""),)


def test_serializer_none_is_the_plain_encoder_and_refuses_datetimes_with_a_type_error() -> None:
    at = datetime.datetime(2024, 1, 2, 3, 4, 5)
    with pytest.raises(TypeError):
        mixpanel.Mixpanel("tok", consumer=Recorder(), serializer=None).track("u-1", "E", {"at": at})
    recorder = Recorder()
    with pytest.raises(TypeError, match=r"properties\.at: a datetime cannot be carried by JSON"):
        Mixpanel("tok", consumer=recorder, serializer=None).track("u-1", "E", {"at": at})
    assert recorder.calls == []


def test_a_value_json_cannot_carry_raises_a_type_error_naming_the_field_as_json_would() -> None:
    with pytest.raises(TypeError):
        mixpanel.Mixpanel("tok", consumer=Recorder()).people_set("u-1", {"o": object()})
    recorder = Recorder()
    with pytest.raises(TypeError) as caught:
        Mixpanel("tok", consumer=recorder).people_set("u-1", {"o": object()})
    assert str(caught.value).startswith("invalid people: $set.o: a object cannot be carried")
    assert recorder.calls == []


class Money(Mapping[str, str]):
    """A mapping that is not a dict: ``json`` hands it to the serializer's ``default()``."""

    def __init__(self, amount: str, currency: str) -> None:
        self._items = {"amount": amount, "currency": currency}

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class MoneySerializer(DatetimeSerializer):
    def default(self, o: Any) -> Any:
        return f"{o['amount']} {o['currency']}" if isinstance(o, Money) else super().default(o)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda mp: mp.track("u-1", "E", {"price": Money("12.50", "EUR")}), id="track"),
        pytest.param(lambda mp: mp.people_set("u-1", {"price": Money("1", "EUR")}), id="people"),
        pytest.param(
            lambda mp: mp.group_set("company", "c-1", {"plan": Money("9", "USD")}), id="group"
        ),
    ],
)
def test_a_mapping_that_is_not_a_dict_goes_to_the_serializer_as_json_sends_it(call: Any) -> None:
    official, ours = _both(call, serializer=MoneySerializer)
    assert ours == official
    assert "EUR" in str(ours) or "USD" in str(ours)
    assert "currency" not in str(ours)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(MappingProxyType({"a": 1}), id="mappingproxy"),
        pytest.param(UserDict({"a": 1}), id="UserDict"),
    ],
)
def test_a_mapping_that_is_not_a_dict_is_refused_by_the_default_serializer_as_json_does(
    value: Any,
) -> None:
    with pytest.raises(TypeError):
        mixpanel.Mixpanel("tok", consumer=Recorder()).track("u-1", "E", {"m": value})
    recorder = Recorder()
    with pytest.raises(TypeError) as caught:
        Mixpanel("tok", consumer=recorder).track("u-1", "E", {"m": value})
    assert f"properties.m: a {type(value).__name__} cannot be carried by JSON" in str(caught.value)
    assert recorder.calls == []


def test_a_call_s_properties_may_be_any_mapping_as_the_official_update_takes_them() -> None:
    official, ours = _both(lambda mp: mp.track("u-1", "E", MappingProxyType({"plan": "pro"})))
    assert ours == official
    assert ours[0][1]["properties"]["plan"] == "pro"


def test_a_serializer_that_rewrites_whole_documents_is_refused_not_ignored() -> None:
    class Redacting(json.JSONEncoder):
        def encode(self, o: Any) -> str:
            return super().encode({**o, "email": "***"})

    with pytest.raises(ConfigError, match=r"serializer: Redacting overrides encode\(\)"):
        Mixpanel("tok", consumer=Recorder(), serializer=Redacting)
    with pytest.raises(ConfigError, match=r"not a json\.JSONEncoder subclass"):
        CoreMixpanel("tok", Recorder(), serializer=Decimal)  # type: ignore[arg-type]


def test_our_own_client_takes_an_official_serializer_class_too() -> None:
    class DecimalSerializer(DatetimeSerializer):
        def default(self, o: Any) -> Any:
            return str(o) if isinstance(o, Decimal) else super().default(o)

    recorder = Recorder()
    client = CoreMixpanel("tok", recorder, serializer=DecimalSerializer)
    client.track("u-1", "E", {"n": Decimal("1.5"), "at": datetime.datetime(2024, 1, 2, 3, 4, 5)})
    props = json.loads(recorder.calls[0][1])["properties"]
    assert (props["n"], props["at"]) == ("1.5", "2024-01-02T03:04:05")


def test_async_with_closes_the_client_as_with_does() -> None:
    flushed: list[bool] = []

    class Buffering(Recorder):
        def flush(self) -> None:
            flushed.append(True)

    async def main() -> None:
        async with Mixpanel("tok", consumer=Buffering()) as mp:
            mp.track("u-1", "E")
        assert flushed == [True]

    asyncio.run(main())


def test_the_official_module_level_names_are_there() -> None:
    data = {"d": datetime.datetime(2020, 1, 2, 3, 4, 5), "n": 1}
    assert compat.json_dumps(data, cls=DatetimeSerializer) == mixpanel.json_dumps(
        data, cls=mixpanel.DatetimeSerializer
    )
    assert compat.__version__ == __import__("mixpanel_core").__version__
    assert compat.logger is logging.getLogger("mixpanel_core")


def test_mixpanel_exception_keeps_its_arguments_as_the_official_one_does() -> None:
    cause = ValueError("boom")
    for exception in (mixpanel.MixpanelException, MixpanelException):
        assert exception("boom", "detail").args == ("boom", "detail")
        assert exception(cause).args == (cause,)
        assert str(exception("boom")) == "boom"


def _sent_under_patched_clock(client_class: Any, frozen: float) -> list[Any]:
    recorder = Recorder()
    client = client_class("tok", consumer=recorder)
    with mock.patch("time.time", return_value=frozen):
        client.track("u1", "Signed up", {"plan": "pro"})
        client.people_set("u1", {"plan": "pro"})
        client.group_set("company", "acme", {"size": 3})
    records = [json.loads(text) for _, text, _ in recorder.calls]
    for record in records:
        record.get("properties", {}).pop("$insert_id", None)
        _same_library(record)
    return records


def test_a_patched_time_time_reaches_payloads_as_with_the_official_client() -> None:
    # Tests that freeze the clock (mock.patch("time.time"), freezegun) see their time in what
    # is sent, as they did with the official client; the validator reads the same clock.
    frozen = round(time.time() - 600, 3)
    ours = _sent_under_patched_clock(Mixpanel, frozen)
    assert ours == _sent_under_patched_clock(mixpanel.Mixpanel, frozen)
    assert ours[0]["properties"]["time"] == frozen


def test_a_clock_patched_while_the_first_client_is_built_does_not_outlive_the_patch() -> None:
    # A fresh interpreter, so the validator plugin is first imported under the patch: it must
    # not keep the fake clock once the patch is undone.
    script = """
        from unittest import mock
        from mixpanel_core.compat import Mixpanel

        class Recorder:
            sent = []
            def send(self, endpoint, json_message):
                self.sent.append(json_message)

        with mock.patch("time.time", return_value=1_000_000_000.0):
            client = Mixpanel("tok", consumer=Recorder())
        client.track("u1", "after the patch")
        print(len(Recorder.sent))
        """
    done = run_python(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
