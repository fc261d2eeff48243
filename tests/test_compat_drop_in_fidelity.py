"""The drop-in as code written for the official package sees it: the text its consumers get,
the attributes its tests read, the errors it matches on, what leaving a ``with`` does."""

from __future__ import annotations

import datetime
import functools
import json
import time
from collections.abc import Callable
from typing import Any

import mixpanel
import pytest

from mixpanel_core import Mixpanel as CoreMixpanel
from mixpanel_core.compat import DatetimeSerializer, Mixpanel, MixpanelException
from mixpanel_core.compat_consumers import BufferedConsumer, Consumer
from mixpanel_core.testing import memory_client
from mixpanel_core.version import __version__ as core_version

TOKEN = "project-token"
FIXED_TIME = float(int(time.time())) + 0.25  # recent: /track refuses old events
FIXED_INSERT_ID = "0123456789abcdef0123456789abcdef"
FILE_NAME = "file\udcff.txt"  # what os.fsdecode gives for a byte that is not UTF-8
PROPERTIES = {
    "name": FILE_NAME,
    "city": "Zoë",
    "tiny": 1e-7,
    "big": 2**70,
    "when": datetime.datetime(2024, 5, 6, 7, 8, 9),
    "tags": ["a", "b"],
}


class CapturingConsumer:
    """A consumer of the user's: keeps (endpoint, the text exactly as received)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, endpoint: str, json_message: str, api_key: Any = None) -> None:
        self.sent.append((endpoint, json_message))


CALLS: list[tuple[str, Callable[[Any], None]]] = [
    ("track", lambda mp: mp.track("user-1", "Upload", PROPERTIES)),
    ("import_data", lambda mp: mp.import_data("key", "u", "Old", 1_600_000_000, PROPERTIES)),
    ("merge", lambda mp: mp.merge("key", "id-1", "id-2", api_secret="s")),
    ("people_set", lambda mp: mp.people_set("u", PROPERTIES)),
    ("people_track_charge", lambda mp: mp.people_track_charge("u", 9.99, {"sku": "Zoë"})),
    ("group_set", lambda mp: mp.group_set("company", "acme", PROPERTIES)),
]


def _texts(client_class: Any, call: Callable[[Any], None]) -> list[tuple[str, str]]:
    consumer = CapturingConsumer()
    client = client_class(TOKEN, consumer)
    client._now = lambda: FIXED_TIME
    client._make_insert_id = lambda: FIXED_INSERT_ID
    call(client)
    return consumer.sent


@pytest.mark.parametrize(("label", "call"), CALLS, ids=[label for label, _ in CALLS])
def test_your_consumer_receives_the_official_text_character_for_character(
    label: str, call: Callable[[Any], None]
) -> None:
    """Strings equal, not only records: ASCII escapes (a lone surrogate's too), ``1e-07``,
    integers beyond 64 bits; only ``$lib_version`` names this library."""
    ours = [
        (endpoint, text.replace(f'"$lib_version":"{core_version}"', '"$lib_version":"5.4.1"'))
        for endpoint, text in _texts(Mixpanel, call)
    ]
    assert ours == _texts(mixpanel.Mixpanel, call)


def test_a_file_name_from_os_fsdecode_is_sent_by_the_native_client_too() -> None:
    mp, memory = memory_client()
    mp.track("u", "Upload", {"name": FILE_NAME})
    (message,) = memory.messages
    assert message.record["properties"]["name"] == FILE_NAME
    assert b'"name":"file\\udcff.txt"' in message.json()


class OverridingConsumer(BufferedConsumer):
    """A user's subclass that looks at the text before handing it on."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def send(
        self,
        endpoint: str,
        json_message: str,
        api_key: str | tuple[str | None, str | None] | None = None,
        api_secret: str | None = None,
    ) -> None:
        self.texts.append(json_message)


def test_a_subclass_of_ours_that_overrides_send_gets_the_official_text() -> None:
    consumer = OverridingConsumer()
    mp = Mixpanel(TOKEN, consumer)
    mp._now = lambda: FIXED_TIME
    mp._make_insert_id = lambda: FIXED_INSERT_ID
    mp.track("user-1", "Upload", PROPERTIES)
    official = CapturingConsumer()
    theirs = mixpanel.Mixpanel(TOKEN, official)
    theirs._now = lambda: FIXED_TIME
    theirs._make_insert_id = lambda: FIXED_INSERT_ID
    theirs.track("user-1", "Upload", PROPERTIES)
    version = f'"$lib_version":"{core_version}"'
    assert [t.replace(version, '"$lib_version":"5.4.1"') for t in consumer.texts] == [
        text for _, text in official.sent
    ]


def _logged(send: Callable[..., None]) -> Callable[..., None]:
    """A user's decorator: ``functools.wraps`` copies the module and name of our ``send``."""

    @functools.wraps(send)
    def wrapper(self: WrappingConsumer, endpoint: str, json_message: str, *rest: Any) -> None:
        self.texts.append(json_message)
        send(self, endpoint, json_message, *rest)

    return wrapper


class WrappingConsumer(BufferedConsumer):
    """A user's subclass whose ``send`` wraps the inherited one."""

    texts: list[str]
    send = _logged(BufferedConsumer.send)


def test_a_subclass_of_ours_that_wraps_send_gets_the_official_text() -> None:
    consumer = WrappingConsumer(max_size=1000)
    consumer.texts = []
    mp = Mixpanel(TOKEN, consumer)
    mp._now = lambda: FIXED_TIME
    mp._make_insert_id = lambda: FIXED_INSERT_ID
    mp.track("user-1", "Upload", PROPERTIES)
    consumer._held.records["events"] = []  # nothing to send at exit
    (official,) = _texts(
        mixpanel.Mixpanel, lambda client: client.track("user-1", "Upload", PROPERTIES)
    )
    version = f'"$lib_version":"{core_version}"'
    assert [t.replace(version, '"$lib_version":"5.4.1"') for t in consumer.texts] == [official[1]]


class FlushCloseConsumer(CapturingConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.flushed = 0
        self.closed = 0

    def flush(self) -> None:
        self.flushed += 1

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("client_class", [Mixpanel, CoreMixpanel])
def test_leaving_the_client_flushes_your_consumer_but_never_closes_it(client_class: Any) -> None:
    """It may be shared with other clients; the official client closes none either."""
    consumer = FlushCloseConsumer()
    with client_class(TOKEN, consumer) as mp:
        mp.track("u", "E")
    assert (consumer.flushed, consumer.closed) == (1, 0)
    with client_class(TOKEN, consumer) as other:  # the same consumer still works after
        other.track("u", "E")
    assert len(consumer.sent) == 2
    assert consumer.closed == 0


def test_the_client_keeps_the_consumer_and_serializer_as_the_official_does() -> None:
    consumer = CapturingConsumer()
    mp = Mixpanel(TOKEN, consumer)
    assert mp._consumer is consumer
    assert mp._serializer is DatetimeSerializer
    assert Mixpanel(TOKEN, consumer, serializer=None)._serializer is None
    assert (mp._token, mp._credentials) == (TOKEN, None)
    default = Mixpanel(TOKEN)
    assert isinstance(default._consumer, Consumer)
    # The very consumer records go through, not a copy.
    assert default.pipeline.transport("default").consumer is default._consumer  # type: ignore[attr-defined]


def test_replacing_the_consumer_on_the_client_is_refused_not_ignored() -> None:
    """The official client sends through whatever ``_consumer`` holds; this one was wired in
    when built, so an assignment that changed nothing would send to the old consumer."""
    mp = Mixpanel(TOKEN, CapturingConsumer())
    with pytest.raises(AttributeError, match=r"_consumer: cannot be replaced .* Mixpanel\(token"):
        mp._consumer = CapturingConsumer()


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"api_host": "api-eu.mixpanel.com"},
        {"events_url": "https://proxy.example.com/e", "groups_url": "https://proxy.example.com/g"},
    ],
)
def test_consumer_endpoints_are_the_official_mapping(arguments: dict[str, str]) -> None:
    ours = Consumer(**arguments)._endpoints  # type: ignore[arg-type]
    theirs = mixpanel.Consumer(**arguments)._endpoints
    assert dict(ours) == theirs
    assert list(ours) == list(theirs)
    with pytest.raises(TypeError):  # read-only: changing it would not move the records
        ours["events"] = "https://elsewhere.example.com/track"  # type: ignore[index]


def test_buffered_consumer_max_size_is_its_batch_size() -> None:
    assert BufferedConsumer()._max_size == 50 == mixpanel.BufferedConsumer()._max_size
    assert BufferedConsumer(max_size=10)._max_size == 10
    assert BufferedConsumer(max_size=500)._max_size == 500  # beyond the official cap of 50
    # Capped at Mixpanel's limit, as the official class caps it at 50 (review M1).
    assert BufferedConsumer(max_size=2500)._max_size == 2000


@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
def test_an_unknown_endpoint_is_refused_in_the_official_words(consumer_class: Any) -> None:
    official_class = getattr(mixpanel, consumer_class.__name__)
    with pytest.raises(mixpanel.MixpanelException) as theirs:
        official_class().send("bogus", "{}")
    with pytest.raises(MixpanelException) as ours:
        consumer_class().send("bogus", "{}")
    assert str(ours.value) == str(theirs.value)
    assert ours.value.args == theirs.value.args


@pytest.mark.parametrize(
    ("timeout", "error", "rule"),
    [
        (0, ValueError, "request_timeout: must be a number of seconds greater than 0.*not 0"),
        (-1.5, ValueError, "request_timeout: .*not -1.5"),
        (float("nan"), ValueError, "request_timeout: .*not nan"),
        (float("inf"), ValueError, "request_timeout: .*at most 86400.*not inf"),
        (1e300, ValueError, "request_timeout: .*at most 86400.*not 1e"),
        ("5", TypeError, "request_timeout: must be a number of seconds.*not str"),
        (True, TypeError, "request_timeout: .*not bool"),
        ((3, 0), ValueError, r"request_timeout\[1\]: .*greater than 0.*not 0"),
        (("3", 10), TypeError, r"request_timeout\[0\]: .*not str"),
        ((1, 2, 3), ValueError, r"request_timeout: a pair must be \(connect, read\).*not 3"),
    ],
)
@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
def test_a_bad_request_timeout_is_named_as_given(
    consumer_class: Any, timeout: object, error: type[Exception], rule: str
) -> None:
    with pytest.raises(error, match=rule):
        consumer_class(request_timeout=timeout)


@pytest.mark.parametrize(
    ("factor", "error", "rule"),
    [
        (float("nan"), ValueError, "retry_backoff_factor: .*not nan"),
        (1e300, ValueError, "retry_backoff_factor: .*at most 43200.*not 1e"),
        ("0.5", TypeError, "retry_backoff_factor: must be a number, not str"),
    ],
)
@pytest.mark.parametrize("retry_limit", [0, 4])
@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
def test_a_bad_retry_backoff_factor_is_named_as_given(
    consumer_class: Any, retry_limit: int, factor: object, error: type[Exception], rule: str
) -> None:
    # It reached the native options as "backoff_base", or went unchecked with retry_limit=0.
    with pytest.raises(error, match=rule):
        consumer_class(retry_limit=retry_limit, retry_backoff_factor=factor)


@pytest.mark.parametrize(
    ("timeout", "connect", "read"), [(2, 2.0, 2.0), (0.5, 0.5, 0.5), ((3.05, 10), 3.05, 10.0)]
)
def test_a_good_request_timeout_is_taken(timeout: object, connect: float, read: float) -> None:
    # A (connect, read) pair is what the official consumer's requests takes too.
    for consumer in (Consumer(request_timeout=timeout), BufferedConsumer(request_timeout=timeout)):
        client = (
            consumer._client if isinstance(consumer, Consumer) else consumer._held.consumer._client
        )
        assert (client.options.connect_timeout, client.options.read_timeout) == (connect, read)


def test_official_text_with_a_surrogate_escape_is_buffered_as_the_official_buffers_it() -> None:
    text = json.dumps(
        {
            "event": "Upload",
            "properties": {"token": TOKEN, "distinct_id": "u", "time": 1, "name": FILE_NAME},
        }
    )
    consumer = BufferedConsumer(max_size=10)
    consumer.send("events", text)  # raised "is not JSON: invalid high surrogate" before
    (held,) = consumer._held.records["events"]
    assert held.record["properties"]["name"] == FILE_NAME
    consumer._held.records["events"] = []  # nothing to send at exit
