"""Values the official client's ``json`` refused with a ``ValueError`` are still caught by
``except ValueError``: a serializer's own refusal (with its words), and properties that hold
themselves. Both were ``NotJSONError``s that were only ``TypeError``s, and the serializer's
message was replaced by "cannot be carried by JSON"."""

from __future__ import annotations

import decimal
import json
import logging
from typing import Any

import mixpanel
import pytest

from mixpanel_core import Mixpanel, compat, hookimpl
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import NotJSONError
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.testing import MemoryTransport


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, endpoint: str, json_message: str) -> None:
        self.sent.append((endpoint, json_message))


class FiniteDecimals(mixpanel.DatetimeSerializer):
    """A user's serializer: finite decimals as floats, and its own refusal of the others."""

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            if not o.is_finite():
                raise ValueError(f"refusing non-finite Decimal {o}")
            return float(o)
        return super().default(o)


@pytest.mark.parametrize("package", [mixpanel, compat])
def test_a_serializers_own_value_error_is_caught_as_one(package: Any) -> None:
    consumer = Recorder()
    client = package.Mixpanel("token", consumer=consumer, serializer=FiniteDecimals)
    client.track("user-1", "Paid", {"price": decimal.Decimal("9.5")})
    with pytest.raises(ValueError, match=r"NaN|properties\.price") as raised:
        client.track("user-1", "Paid", {"price": decimal.Decimal("NaN")})
    assert [json.loads(m)["properties"]["price"] for _, m in consumer.sent] == [9.5]
    if package is compat:
        # The serializer's words are the cause; the error's own text, which a drop logs and
        # reports, names the field only (they may quote the value).
        assert isinstance(raised.value, NotJSONError)
        assert "properties.price: the serializer refused a Decimal" in str(raised.value)
        assert "NaN" not in str(raised.value)
        assert str(raised.value.__cause__) == "refusing non-finite Decimal NaN"
    else:
        assert str(raised.value) == "refusing non-finite Decimal NaN"


def test_a_serializers_words_stay_out_of_a_drops_log_line_and_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Quoting(mixpanel.DatetimeSerializer):
        def default(self, o: Any) -> Any:
            raise ValueError(f"will not write {o!r}")

    reports: list[Any] = []

    class Observer:
        @hookimpl
        def mixpanel_delivered(self, report: Any) -> None:
            reports.append(report)

    config = config_from_mapping({"pipeline": {"on_invalid": "drop"}})
    pipeline = Pipeline([("observer", Observer())], {"default": MemoryTransport()}, config)
    client = Mixpanel("token", config=config, pipeline=pipeline, serializer=Quoting)
    with caplog.at_level(logging.WARNING):
        client.track("user-1", "Signed up", {"email": Secretive("alice@example.com")})
    assert [r.status.value for r in reports] == ["dropped"]
    assert "alice@example.com" not in (reports[0].reason or "")
    assert "properties.email: the serializer refused a Secretive" in (reports[0].reason or "")
    assert "alice@example.com" not in caplog.text


class Secretive:
    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return self.value


@pytest.mark.parametrize("package", [mixpanel, compat])
def test_properties_that_hold_themselves_are_caught_as_a_value_error(package: Any) -> None:
    consumer = Recorder()
    properties: dict[str, Any] = {"plan": "pro"}
    properties["self"] = properties
    with pytest.raises(ValueError, match=r"Circular reference|holds itself"):
        package.Mixpanel("token", consumer=consumer).track("user-1", "Loop", properties)
    assert consumer.sent == []


def test_a_type_json_cannot_write_is_still_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"properties\.tags: a set cannot be carried by JSON"):
        compat.Mixpanel("token", consumer=Recorder()).track("user-1", "Tagged", {"tags": {"a"}})
