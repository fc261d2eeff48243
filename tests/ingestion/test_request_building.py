"""Request building, checked without a server: bodies, query strings, auth headers."""

from __future__ import annotations

import base64
import gzip
import random
import urllib.parse
from typing import Any

import orjson
import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.frozen import freeze
from mixpanel_core.ingestion import HttpOptions, IngestionClient, wire_format
from mixpanel_core.ingestion.encoding import FORM_FIELDS
from mixpanel_core.ingestion.formencode import needs_quoting, quote
from mixpanel_core.ingestion.http import HttpSession, Response
from mixpanel_core.ingestion.session_errors import RequestError
from mixpanel_core.messages import (
    ENDPOINTS,
    Endpoint,
    GroupUpdate,
    ImportAuth,
    ImportEvent,
    Message,
)
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

from .conftest import TOKEN, event, import_event, profile


class FakeSession:
    """Stands in for the HTTP hop: records each request, answers like a happy Mixpanel."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        timeout: tuple[float, float],
        total: float | None = None,
        counted_once: bool = True,
    ) -> Response:
        base, _, query = url.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        self.calls.append(
            {
                "url": base,
                "params": params,
                "data": body,
                "headers": headers,
                "timeout": timeout,
                "total": total,
            }
        )
        return Response(200, b'{"status": 1, "error": null}', {})


def client_with_fake(
    settings: MixpanelSettings, options: HttpOptions | None = None
) -> tuple[IngestionClient, FakeSession]:
    client = IngestionClient(settings, options)
    fake = FakeSession()
    # Where each attempt looks the session up (``posting.Poster``), not the client's own.
    client._poster._http = fake  # type: ignore[assignment]
    return client, fake


def basic_user(header: str) -> tuple[str, str]:
    user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    return user, password


def test_track_body_is_form_encoded_like_the_official_client() -> None:
    """data= carries the JSON array, with verbose=1 and ip=0, to https://HOST/track."""
    client, fake = client_with_fake(MixpanelSettings(api_host="api-eu.mixpanel.com"))
    messages = [event(city="Zürich & co"), event()]
    client.send_batch("track", messages)
    call = fake.calls[0]
    assert call["url"] == "https://api-eu.mixpanel.com/track"
    assert call["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    form = urllib.parse.parse_qs(call["data"].decode(), strict_parsing=True)
    assert form["verbose"] == ["1"]
    assert form["ip"] == ["0"]
    assert orjson.loads(form["data"][0]) == [orjson.loads(orjson.dumps(m.record)) for m in messages]
    assert call["timeout"] == (5.0, 30.0)


@pytest.mark.parametrize("endpoint", ["track", "engage", "groups", "import"])
def test_an_ip_in_the_urls_query_is_the_only_one_sent(endpoint: Endpoint) -> None:
    """``urls.NAME = ".../NAME?ip=1"`` (to have Mixpanel geolocate by the request's
    address): the client's own ``ip=0`` is left out, which would contradict it, on the form
    and on /import's query alike (review R56 F3); the other endpoints keep theirs."""
    settings = MixpanelSettings(
        token=TOKEN, urls={endpoint: f"https://proxy.example/{endpoint}?ip=1"}
    )
    client, fake = client_with_fake(settings)
    records = {
        "track": event(),
        "import": import_event(),
        "engage": profile(),
        "groups": profile(GroupUpdate),
    }
    for other in ENDPOINTS:
        client.send_batch(other, [records[other]])
    for call in fake.calls:
        sent = dict(call["params"])
        if call["headers"]["Content-Type"] == "application/x-www-form-urlencoded":
            form = urllib.parse.parse_qs(call["data"].decode(), strict_parsing=True)
            assert "ip" not in sent or "ip" not in form, "never said twice"
            sent.update({k: v[0] for k, v in form.items() if k != "data"})
        expected = "1" if call["url"].endswith(f"/{endpoint}") else "0"
        assert sent["ip"] == expected, call["url"]


@pytest.mark.parametrize(
    ("endpoint", "import_format"), [("track", "json"), ("import", "json"), ("import", "ndjson")]
)
@pytest.mark.parametrize("count", [0, 1, 2, 5])
@pytest.mark.parametrize("note", ["plain", "& more = 1+1; #é\x7f", "tab\there"])
def test_a_body_is_the_framing_around_the_joined_records(
    endpoint: str, import_format: str, count: int, note: str
) -> None:
    """The body built in one join is the plain framing of the records, quoted for forms."""
    fmt = wire_format(endpoint, import_format)  # type: ignore[arg-type]
    messages = [event(note=f"{n} {note}") for n in range(count)]
    items = fmt.encode_messages(messages)
    framed = fmt.prefix + fmt.separator.join(m.json() for m in messages) + fmt.suffix
    expected = b"data=" + quote(framed) + FORM_FIELDS if fmt.form_encoded else framed
    assert fmt.body(items) == expected
    assert fmt.body(items) == fmt.body([(m, m.json()) for m in messages])  # plain pairs too
    assert [i.data for i in items] == [m.json() for m in messages]  # the records untouched
    if not fmt.form_encoded:
        assert len(expected) == fmt.body_size(sum(len(i.data) for i in items), count)


def test_tls_is_verified_unless_turned_off() -> None:
    verified = HttpSession(4, verify_tls=True)._route("https://api.mixpanel.com/track")
    unverified = HttpSession(4, verify_tls=False)._route("https://api.mixpanel.com/track")
    assert verified.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
    assert unverified.connection_pool_kw["cert_reqs"] == "CERT_NONE"


def test_quoted_values_decode_to_the_original_with_any_form_parser() -> None:
    """Whatever the text (separators, %, +, spaces, controls, Unicode), a form parser gives
    back exactly the original, and nothing it treats specially is left unescaped."""
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(127)] + list("éß中😀\u2028%&+=;#")
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        quoted = quote(text.encode())
        body = (b"data=" + quoted + b"&ip=0").decode("ascii")
        parsed = urllib.parse.parse_qsl(body, keep_blank_values=True, strict_parsing=True)
        assert parsed == [("data", text), ("ip", "0")]
        assert urllib.parse.unquote_plus(quoted.decode()) == text
        assert not set(quoted) & set(b"&=;# ")
        assert quoted.count(b"+") == text.count(" ")  # a "+" only for a space
        assert quoted.isascii()


def test_needs_quoting_says_whether_quote_would_change_the_range() -> None:
    """Checked where the records lie inside a framed body, and on bytes of their own."""
    rng = random.Random(11)
    alphabet = [chr(c) for c in range(128)] + list("é中")
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))).encode()
        changed = quote(text) != text
        framed = b"data=[" + text + b"]&ip=0"
        assert needs_quoting(framed, 6, len(framed) - 6) == changed, text
        assert needs_quoting(text) == changed, text


def test_import_uses_service_account_and_project_id() -> None:
    """/import: JSON array, strict=1, Basic with the service account, ?project_id=."""
    settings = MixpanelSettings(
        service_account_username="sa-user",
        service_account_secret=Secret("sa-secret"),
        project_id="12345",
        api_secret=Secret("ignored"),
    )
    client, fake = client_with_fake(settings)
    message = import_event()
    client.send_batch("import", [message])
    call = fake.calls[0]
    assert call["url"] == "https://api.mixpanel.com/import"
    assert call["params"] == {"strict": "1", "ip": "0", "project_id": "12345"}
    assert call["headers"]["Content-Type"] == "application/json"
    assert basic_user(call["headers"]["Authorization"]) == ("sa-user", "sa-secret")
    assert orjson.loads(call["data"]) == [orjson.loads(orjson.dumps(message.record))]


def test_import_secret_given_with_the_call_beats_the_configured_one() -> None:
    client, fake = client_with_fake(MixpanelSettings(api_secret=Secret("configured")))
    plain = import_event()
    record = freeze(dict(import_event().record), "import")
    per_call = ImportEvent(record, ImportAuth("key", Secret("per-call")))
    client.send_batch("import", [plain, per_call])
    users = sorted(basic_user(c["headers"]["Authorization"]) for c in fake.calls)
    assert users == [("configured", ""), ("per-call", "")]
    assert all("project_id" not in c["params"] for c in fake.calls)


def test_reports_follow_the_given_order_when_credentials_split_a_batch() -> None:
    """Records with other credentials go in another request; the reports stay in order."""
    client, fake = client_with_fake(MixpanelSettings(api_secret=Secret("configured")))
    record = freeze(dict(import_event().record), "import")
    messages: list[Message] = []
    for n in range(6):
        auth = ImportAuth("key", Secret("per-call")) if n % 3 == 1 else None
        messages.append(ImportEvent(record, auth) if auth else import_event())
    result = client.send_batch("import", messages)
    assert len(fake.calls) == 2
    assert [r.message for r in result.reports] == messages
    assert [r.status for r in result.reports] == [DeliveryStatus.ACCEPTED] * 6
    assert [r.attempts for r in result.reports] == [1] * 6


def test_a_result_keeps_its_records_when_the_callers_list_changes() -> None:
    """Reports are built when first read: from the result's own batches, not the caller's."""
    client, _ = client_with_fake(MixpanelSettings(token="t"))
    messages = [event(), event()]
    items = client.encode("track", messages)
    result = client.send_encoded("track", items)
    items.clear()
    assert [r.message for r in result.reports] == messages


def test_import_falls_back_to_the_token_in_the_record() -> None:
    client, fake = client_with_fake(MixpanelSettings())
    client.send_batch("import", [import_event()])
    assert basic_user(fake.calls[0]["headers"]["Authorization"]) == ("emulator-token", "")


def test_gzip_and_ndjson() -> None:
    """gzip compresses the body and says so; ndjson sends one record a line."""
    options = HttpOptions(gzip=True, import_format="ndjson", strict=False)
    client, fake = client_with_fake(MixpanelSettings(token="t"), options)
    messages: list[Message] = [import_event(), import_event()]
    client.send_batch("import", messages)
    call = fake.calls[0]
    assert call["headers"]["Content-Encoding"] == "gzip"
    assert call["headers"]["Content-Type"] == "application/x-ndjson"
    assert call["params"] == {"ip": "0"}
    lines = gzip.decompress(call["data"]).splitlines()
    assert [orjson.loads(line) for line in lines] == [
        orjson.loads(orjson.dumps(m.record)) for m in messages
    ]


def test_secrets_never_appear_in_reprs() -> None:
    settings = MixpanelSettings(
        api_secret=Secret("s3cr3t"),
        service_account_username="sa-user",
        service_account_secret=Secret("s4-secret"),
        project_id="12345",
    )
    client = IngestionClient(settings)
    for secret in ("s3cr3t", "s4-secret"):
        assert secret not in repr(settings)
        assert secret not in repr(client._credentials)


class UnmadeRequestSession(FakeSession):
    """The HTTP hop refusing to make the request (``errors_sorted``'s ``RequestError``)."""

    def post(self, *args: Any, **kwargs: Any) -> Response:
        raise RequestError("LocationParseError: Failed to parse: the URL")


def test_request_errors_do_not_leak_through_unclassified() -> None:
    """An error other than a network failure (a URL urllib3 cannot parse) ends as FAILED,
    not raised, and is not retried. (A host it cannot parse is refused by the settings now,
    so the hop stands in.)"""
    client = IngestionClient(MixpanelSettings())
    client._poster._http = UnmadeRequestSession()  # type: ignore[assignment]
    result = client.send_batch("track", [event()])
    assert [report.status for report in result.reports] == [DeliveryStatus.FAILED]
    assert result.failed[0].reason == "LocationParseError: Failed to parse: the URL"
    assert result.failed[0].attempts == 1


@pytest.mark.parametrize("value", [0.0, -1.0])
@pytest.mark.parametrize("option", ["connect_timeout", "read_timeout"])
def test_timeouts_can_not_be_unbounded(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{option}: must be greater than 0"):
        HttpOptions(**{option: value})


def test_each_request_carries_the_connect_and_the_read_timeout() -> None:
    options = HttpOptions(connect_timeout=1.5, read_timeout=7.0)
    client, fake = client_with_fake(MixpanelSettings(), options)
    client.send_batch("track", [event()])
    client.send_batch("import", [import_event()])
    assert [call["timeout"] for call in fake.calls] == [(1.5, 7.0), (1.5, 7.0)]
