"""``mixpanel_core.compat`` behaves like the official module for existing users' code."""

from __future__ import annotations

import datetime
import json
import socket
from decimal import Decimal
from typing import Any

import pytest

from mixpanel_core import MixpanelCoreError
from mixpanel_core.compat import (
    DatetimeSerializer,
    Mixpanel,
    MixpanelException,
    ServiceAccountCredentials,
)
from mixpanel_core.compat_consumers import BufferedConsumer


class ListConsumer:
    """What users' tests typically pass: a consumer that keeps what it is sent."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []

    def send(self, endpoint: str, json_message: str, api_key: Any = None) -> None:
        self.log.append((endpoint, json.loads(json_message)))


def test_monkeypatched_seams_on_the_instance_fix_time_and_insert_id() -> None:
    consumer = ListConsumer()
    mp = Mixpanel("tok", consumer=consumer)
    mp._now = lambda: 1_000.5
    mp._make_insert_id = lambda: "abcdef"  # type: ignore[method-assign]
    mp.import_data("key", "u-1", "E", 1_600_000_000)
    mp.people_set("u-1", {"a": 1})
    (endpoint, event), (_, person) = consumer.log
    assert endpoint == "imports"
    assert event["properties"]["$insert_id"] == "abcdef"
    assert person["$time"] == 1_000.5


def test_custom_serializer_is_used_for_values_json_cannot_carry() -> None:
    class DecimalSerializer(DatetimeSerializer):
        def default(self, o: Any) -> Any:
            if isinstance(o, Decimal):
                return str(o)
            return super().default(o)

    consumer = ListConsumer()
    mp = Mixpanel("tok", consumer=consumer, serializer=DecimalSerializer)
    mp.track(
        "u-1", "Paid", {"amount": Decimal("9.99"), "at": datetime.datetime(2024, 1, 2, 3, 4, 5)}
    )
    props = consumer.log[0][1]["properties"]
    assert props["amount"] == "9.99"
    assert props["at"] == "2024-01-02T03:04:05"


def test_datetime_serializer_matches_the_official_format() -> None:
    text = json.dumps({"d": datetime.datetime(2020, 2, 3, 4, 5, 6)}, cls=DatetimeSerializer)
    assert text == '{"d": "2020-02-03T04:05:06"}'


def test_service_account_credentials_check_and_hide_the_secret() -> None:
    creds = ServiceAccountCredentials(" user ", "s3cret", "123")
    assert (creds.username, creds.secret, creds.project_id) == ("user", "s3cret", "123")
    assert "s3cret" not in repr(creds)
    with pytest.raises(ValueError, match="secret cannot be empty"):
        ServiceAccountCredentials("u", " ", "1")
    with pytest.raises(TypeError, match="project_id must be a string"):
        ServiceAccountCredentials("u", "s", 1)  # type: ignore[arg-type]


def test_a_failed_flush_raises_our_exception_naming_the_batch_and_its_endpoint() -> None:
    # A bound port that does not listen: every connection is refused, at once.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        host, port = closed.getsockname()
        consumer = BufferedConsumer(api_host=f"http://{host}:{port}", retry_limit=0)
        mp = Mixpanel("tok", consumer=consumer)
        mp.people_set("u-1", {"plan": "pro"})
        mp.people_set("u-2", {"plan": "free"})
        with pytest.raises(MixpanelException) as caught:
            consumer.flush()
    error = caught.value
    assert isinstance(error, MixpanelCoreError)
    assert error.endpoint == "people"
    assert error.message is not None
    assert [update["$distinct_id"] for update in json.loads(error.message)] == ["u-1", "u-2"]
    assert "2 of 2 records not accepted" in str(error)


def test_feature_flag_configs_fail_loudly() -> None:
    with pytest.raises(MixpanelCoreError, match="feature flags"):
        Mixpanel("tok", consumer=ListConsumer(), local_flags_config=object())


def test_a_consumer_that_raises_reaches_the_caller_unchanged() -> None:
    raised = MixpanelException("down")

    class Failing:
        def send(self, endpoint: str, json_message: str) -> None:
            raise raised

    mp = Mixpanel("tok", consumer=Failing())
    with pytest.raises(MixpanelException) as caught:
        mp.track("u-1", "E")
    # The very instance the consumer raised: not a copy, not wrapped in another exception.
    assert caught.value is raised
