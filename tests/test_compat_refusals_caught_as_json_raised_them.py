"""Values the official client's ``json`` refused with a ``ValueError`` are still caught by
``except ValueError``: a serializer's own refusal (with its words), and properties that hold
themselves. Both were ``NotJSONError``s that were only ``TypeError``s, and the serializer's
message was replaced by "cannot be carried by JSON"."""

from __future__ import annotations

import decimal
import json
from typing import Any

import mixpanel
import pytest

from mixpanel_core import compat
from mixpanel_core.errors import NotJSONError


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
    with pytest.raises(ValueError, match="refusing non-finite Decimal NaN") as raised:
        client.track("user-1", "Paid", {"price": decimal.Decimal("NaN")})
    assert [json.loads(m)["properties"]["price"] for _, m in consumer.sent] == [9.5]
    if package is compat:
        assert isinstance(raised.value, NotJSONError)
        assert "properties.price: the serializer refused a Decimal" in str(raised.value)


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
