"""A server that echoes the request's credentials in its answer (a proxy's or firewall's error
page, a wrong ``api_host``) gets them into no report, log, dead letter or error.

Review R18 found the answer's text carried verbatim into every delivery report of the ``http``
and ``buffered_http`` transports, ``buffered_http``'s error log and dead letters, and the
``compat.BufferedConsumer``'s errors: a batch that one call's ``send`` filled and sent raised
to that caller the API secrets earlier calls had given (other tenants' secrets, say). The
ingestion client, which knows each request's credentials, now redacts what an answer says.
"""

from __future__ import annotations

import base64
import html
import http.server
import json
import logging
import re
import threading
import time
import traceback
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mixpanel_core import Mixpanel, compat
from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.redactor import WITHHELD
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings
from mixpanel_core.testing import ReportCollector

from .ingestion.conftest import import_event

CONFIGURED = "CFGSECRET-9d8e7f"
TENANTS = ("TENANT-A-secret-111", "TENANT-B-secret-222", "TENANT-C-secret-333")
FAST = {"retry_budget": 0.2, "backoff_base": 0.001, "backoff_cap": 0.002}


def spellings(secret: str) -> list[str]:
    return [secret, base64.b64encode(f"{secret}:".encode()).decode()]


class Echoing(http.server.BaseHTTPRequestHandler):
    """Answers every request with ``status`` and a body quoting its Authorization header,
    and what that header decodes to: in Mixpanel's JSON ``error``, in a page whose start a
    reason quotes (the secret across where it is cut), or in strict mode's failed records."""

    status = 401
    kind = "json"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        header = self.headers.get("Authorization", "")
        decoded = base64.b64decode(header.removeprefix("Basic ")).decode() if header else ""
        echo = f"refused {header} ({decoded})"
        if self.kind == "html":
            # A reason quotes the first 500 characters: the cut falls inside the Basic value.
            body = f"<html><body>{'x' * 458} {echo}</body></html>".encode()
        elif self.kind == "strict":
            failure = {"index": 0, "insert_id": "t0", "field": echo, "message": echo}
            body = json.dumps(
                {"code": 400, "error": echo, "num_records_imported": 0, "failed_records": [failure]}
            ).encode()
        else:
            body = json.dumps({"status": 0, "error": echo}).encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(
    params=[(401, "json"), (400, "json"), (500, "json"), (401, "html"), (400, "strict")],
    ids=lambda param: f"{param[0]}-{param[1]}",
)
def echoing(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    status, kind = request.param
    handler = type("Handler", (Echoing,), {"status": status, "kind": kind})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", kind
    server.shutdown()
    server.server_close()
    thread.join()


def import_calls(mixpanel: Mixpanel, secrets: tuple[str | None, ...] = TENANTS) -> list[Exception]:
    """One ``import_data`` per secret (``None``: the configured one); what they raised."""
    raised = []
    for n, secret in enumerate(secrets):
        try:
            mixpanel.import_data(
                "key",
                "u",
                "Signed up",
                time.time() - 60,
                {"$insert_id": f"t{n}"},
                api_secret=secret,
            )
        except Exception as exc:
            raised.append(exc)
    return raised


def assert_told_none(*texts: str) -> None:
    """No 10 characters in a row of any spelling of a secret: a part of one is a leak too."""
    every = "\n".join(texts)
    for secret in (CONFIGURED, *TENANTS):
        for spelling in spellings(secret):
            for start in range(len(spelling) - 9):
                part = spelling[start : start + 10]
                assert part not in every, f"{part} (of {spelling}) in:\n{every}"


def printed(errors: list[BaseException]) -> list[str]:
    return ["".join(traceback.format_exception(error)) for error in errors]


@pytest.mark.integration
@pytest.mark.parametrize("transport", ["http", "buffered_http"])
def test_an_echoed_secret_is_in_no_report_log_or_dead_letter(
    echoing: tuple[str, str], transport: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, kind = echoing
    options: dict[str, Any] = {"type": transport, **FAST}
    if transport == "buffered_http":
        options["dead_letter_path"] = str(tmp_path / "dead.jsonl")
    config = config_from_mapping(
        {
            "mixpanel": {"api_host": url, "token": "token", "api_secret": CONFIGURED},
            "transports": {"default": options},
        }
    )
    collector = ReportCollector()
    mixpanel = Mixpanel("token", config=config, pipeline=Pipeline([("c", collector)], None, config))
    caplog.set_level(logging.DEBUG)
    raised = import_calls(mixpanel, (*TENANTS, None))
    mixpanel.close()

    reasons = [report.reason or "" for report in collector.reports]
    assert len(reasons) == 4
    assert all(r.status is not DeliveryStatus.ACCEPTED for r in collector.reports)
    # The texts still say what the server said, a credential by what it was (but where the
    # page is cut before it: redacted before it is cut, as a cut secret would match nothing).
    if kind != "html":
        assert any("<the api_secret given with the call (Basic)>" in r for r in reasons), reasons
        assert any("<mixpanel.api_secret (Basic)>" in r for r in reasons), reasons
    dead = (tmp_path / "dead.jsonl").read_text() if transport == "buffered_http" else ""
    if transport == "buffered_http":
        assert dead.count("\n") == 4
    else:
        assert len(raised) == 4
    assert_told_none(*reasons, caplog.text, dead, *printed(raised))


@pytest.mark.integration
def test_a_buffering_consumers_batch_tells_no_call_the_secrets_of_the_others(
    echoing: tuple[str, str],
) -> None:
    """The third call fills the buffer, and its ``send`` sends all three calls' records."""
    url, kind = echoing
    consumer = compat.BufferedConsumer(
        max_size=3, retry_limit=0, **{f"{e}_url": f"{url}/{e}" for e in ("events", "import")}
    )
    config = config_from_mapping({"mixpanel": {"token": "token"}})
    collector = ReportCollector()
    pipeline = Pipeline([("c", collector)], {"default": consumer}, config)
    mixpanel = Mixpanel("token", config=config, pipeline=pipeline)
    raised = import_calls(mixpanel)

    assert len(raised) == 1  # the third call's
    text = printed(raised)[0]
    if kind != "html":
        assert "<the api_secret given with the call" in text, text
    assert_told_none(text, *(report.reason or "" for report in collector.reports))


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next of ``answers``: (status, headers, body)."""

    answers: ClassVar[list[tuple[int, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        status, headers, body = self.answers.pop(0)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def scripted(answers: list[tuple[int, dict[str, str], bytes]]) -> Iterator[str]:
    handler = type("Handler", (Scripted,), {"answers": answers})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def ingestion_client(url: str, secret: str) -> IngestionClient:
    settings = MixpanelSettings(api_host=url, token="token", api_secret=Secret(secret))
    options = HttpOptions(rate_limit_base=0.01, rate_limit_cap=0.02, retry_budget=10)
    return IngestionClient(settings, options)


@pytest.mark.integration
def test_a_secret_json_escapes_hide_from_the_body_is_redacted_as_decoded() -> None:
    """Review R20: a JSON writer that escapes ``/`` (PHP) hid the secret from the pass over the
    raw body, and decoding the reason brought it back whole."""
    secret = "s3cret/with+slash"
    error = json.dumps({"status": 0, "error": f"refused {secret}"}).replace("/", "\\/")
    for url in scripted([(401, {}, error.encode())]):
        client = ingestion_client(url, secret)
        with pytest.raises(AuthenticationError) as refused:
            client.send_batch("import", [import_event()])
        client.close()
    assert_told_none_of(
        secret, str(refused.value), *(r.reason or "" for r in refused.value.reports)
    )


@pytest.mark.integration
def test_a_lower_case_retry_after_is_honoured_with_a_secret_configured() -> None:
    """Review R20: the answer redacted again lost its headers' case-insensitivity, and a 429's
    ``retry-after`` was not found whenever a credential was configured."""
    rate_limited = json.dumps({"code": 429, "error": "Project exceeded rate limits"}).encode()
    imported = json.dumps({"code": 200, "num_records_imported": 1, "status": "OK"}).encode()
    answers = [(429, {"retry-after": "1"}, rate_limited), (200, {}, imported)]
    for url in scripted(answers):
        client = ingestion_client(url, "some-secret")
        started = time.monotonic()
        result = client.send_batch("import", [import_event()])
        waited = time.monotonic() - started
        client.close()
    assert [r.status for r in result.reports] == [DeliveryStatus.ACCEPTED]
    assert waited >= 0.9  # as told, not the 0.01 s of rate_limit_base


def assert_told_none_of(secret: str, *texts: str) -> None:
    every = "\n".join(texts)
    assert "refused" in every, every
    assert secret not in every, every


ODD_SECRET = "Q7wE9rT2yU/i8pZ&xCv6<Bn4Mk>a\u00e93sD5fG"
"""A secret with what JSON writers and HTML escape: ``/ & < >`` and a non-ASCII letter."""


@pytest.mark.integration
@pytest.mark.parametrize(
    "page",
    [
        json.dumps({"message": f"refused {ODD_SECRET}"}).replace("/", "\\/"),  # PHP
        json.dumps({"message": f"refused {ODD_SECRET}"}, ensure_ascii=False)
        .replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e"),  # Go
        f"<html><body>refused {html.escape(ODD_SECRET)}</body></html>",
    ],
    ids=["php-json", "go-json", "html"],
)
def test_a_secret_a_page_escapes_is_redacted_in_the_text_quoted(page: str) -> None:
    """Review R21: a page that is not Mixpanel's JSON is quoted as it is, escapes and all,
    and the redactor knew no escaped spelling of a secret but Python's JSON."""
    for url in scripted([(401, {}, page.encode())]):
        client = ingestion_client(url, ODD_SECRET)
        with pytest.raises(AuthenticationError) as refused:
            client.send_batch("import", [import_event()])
        client.close()
    [report] = refused.value.reports
    assert "<mixpanel.api_secret>" in (report.reason or ""), report.reason
    for text in (str(refused.value), report.reason or ""):
        for start in range(len(ODD_SECRET) - 9):
            assert ODD_SECRET[start : start + 10] not in html.unescape(text), text


def _unicode_upper(text: str) -> str:
    """JSON as .NET's and PHP's hex flags write it: upper-case ``\\u`` escapes."""
    return re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), text)


def _lower_escapes(text: str) -> str:
    """Percent-encoding as .NET's ``HttpUtility.UrlEncode`` writes it: ``%2f``."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _entities(text: str, style: str) -> str:
    """Every character but letters and digits as a numeric HTML entity, as OWASP's encoder
    (``hex``) or Go's html/template and Jinja2 (``decimal``, for ``+ ' "``) write them."""
    if style == "hex":
        return "".join(c if c.isalnum() else f"&#x{ord(c):X};" for c in text)
    return "".join(f"&#{ord(c)};" if c in "+'\"" else html.escape(c, quote=False) for c in text)


def _decoded(text: str) -> list[str]:
    """What a reader may decode ``text`` into: the test's own decoders, not the product's."""
    forms = [text, html.unescape(text), urllib.parse.unquote(text), text.replace("\x00", "")]
    forms.append(re.sub(r"\\x([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text))
    forms.append(re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: chr(int(m.group(1), 16)), text))
    forms.append(forms[-1].replace("\\/", "/"))
    forms += [
        base64.b64decode(run + "==").decode("latin-1") for run in re.findall(r"[\w+/]{24,}", text)
    ]
    return forms


def assert_no_part_of(secret: str, *texts: str) -> None:
    """No 10 characters in a row of ``secret`` or its Basic value, in any decoding."""
    for form in (f for text in texts for f in _decoded(text)):
        for spelling in (secret, base64.b64encode(f"{secret}:".encode()).decode()):
            for start in range(len(spelling) - 9):
                assert spelling[start : start + 10] not in form, form


SYMFONY_SECRET = "k9+Zq/2W&x<7>T'p\"e\u00e9Lm3R"
"""A generated secret with what every writer below escapes: ``+ / & < > ' "`` and ``é``."""


@pytest.mark.integration
@pytest.mark.parametrize(
    ("page", "charset"),
    [
        # Symfony's and Laravel's JsonResponse: PHP's \/ with the JSON_HEX_* escapes.
        (
            _unicode_upper(
                json.dumps({"message": SYMFONY_SECRET})
                .replace("/", "\\/")
                .replace("&", "\\u0026")
                .replace("<", "\\u003c")
                .replace(">", "\\u003e")
                .replace("'", "\\u0027")
                .replace('\\"', "\\u0022")
            ),
            "utf-8",
        ),
        # .NET's System.Text.Json: + as \u002B, upper-case hex.
        (_unicode_upper(json.dumps({"message": SYMFONY_SECRET})).replace("+", "\\u002B"), "utf-8"),
        (f"<html>{_entities(SYMFONY_SECRET, 'hex')}</html>", "utf-8"),
        (f"<html>{_entities(SYMFONY_SECRET, 'decimal')}</html>", "utf-8"),
        (f"denied: /{_lower_escapes(urllib.parse.quote(SYMFONY_SECRET, safe=''))}", "utf-8"),
        (f"<html>refused {SYMFONY_SECRET}</html>", "latin-1"),
        (f"<html>refused {SYMFONY_SECRET}</html>", "utf-16"),  # R23: a NUL between letters
        (f"<html>refused {SYMFONY_SECRET}</html>", "utf-32"),  # R24: three
        (  # JavaScript's \xHH, as OWASP ESAPI writes every character but letters and digits
            "".join(
                c if c.isalnum() and c.isascii() else f"\\x{ord(c):02X}" for c in SYMFONY_SECRET
            ),
            "utf-8",
        ),
        (
            base64.b64encode(
                f"Basic {base64.b64encode(f'{SYMFONY_SECRET}:'.encode()).decode()}".encode()
            ).decode(),
            "utf-8",
        ),
    ],
    ids=[
        "symfony-json",
        "dotnet-json",
        "html-hex",
        "html-decimal",
        "percent-lower",
        "latin-1",
        "utf-16",
        "utf-32",
        "javascript-x",
        "base64-header",
    ],
)
def test_a_secret_in_a_spelling_the_redactor_does_not_know_is_withheld(
    page: str, charset: str
) -> None:
    """Review R22: a list of spellings always misses one (Symfony's JSON, .NET's, numeric HTML
    entities, lower-case percent escapes, a page in Latin-1 that leaves all of a secret but
    one letter). A text that still gives one away, decoded, is withheld whole."""
    for url in scripted([(401, {}, page.encode(charset, "replace"))]):
        client = ingestion_client(url, SYMFONY_SECRET)
        with pytest.raises(AuthenticationError) as refused:
            client.send_batch("import", [import_event()])
        client.close()
    [report] = refused.value.reports
    assert_no_part_of(SYMFONY_SECRET, str(refused.value), report.reason or "")
    assert "Mixpanel refused the api secret for /import (HTTP 401)" in str(refused.value)


@pytest.mark.integration
def test_a_secret_as_short_as_a_letter_changes_no_outcome_and_no_label() -> None:
    """Review R22: the body was redacted before it was classified, so a secret such as ``e``
    broke Mixpanel's JSON and a strict 400 naming one record of two rejected both; and a
    reason redacted twice put a secret found inside a label into it (``<mixpanel.api_<...>>``)."""
    failed = {"index": 1, "insert_id": "b", "field": "properties.time", "message": "too old"}
    strict = {
        "code": 400,
        "error": "some data points in the request failed validation",
        "num_records_imported": 1,
        "failed_records": [failed],
        "status": "Bad Request",
    }
    refused = {"error": "Invalid API secret", "status": 0}
    answers = [(400, {}, json.dumps(strict).encode()), (401, {}, json.dumps(refused).encode())]
    for url in scripted(answers):
        client = ingestion_client(url, "e")
        result = client.send_batch(
            "import", [import_event(**{"$insert_id": "a"}), import_event(**{"$insert_id": "b"})]
        )
        assert [r.status for r in result.reports] == [
            DeliveryStatus.ACCEPTED,
            DeliveryStatus.REJECTED,
        ]
        client.close()
    for url in scripted([(401, {}, json.dumps(refused).encode())]):
        client = ingestion_client(url, "secret")
        with pytest.raises(AuthenticationError) as error:
            client.send_batch("import", [import_event()])
        client.close()
    [report] = error.value.reports
    assert report.reason == "Invalid API <mixpanel.api_secret>"


@pytest.mark.integration
@pytest.mark.parametrize("charset", ["utf-32", "utf-32-be", "utf-16-be"])
def test_a_secret_beyond_latin_1_in_a_wide_page_is_withheld(charset: str) -> None:
    """Review R25: a UTF-32 page was read with its NULs dropped, as Latin-1 only: a secret
    with a letter beyond Latin-1 (``€``) gave away all its other letters."""
    secret = "k\u20ac9Zq\u20ac2W&\u20ac7T\u20acpL\u20acm3R\u20acx"
    for url in scripted([(401, {}, f"<html>refused {secret}</html>".encode(charset))]):
        client = ingestion_client(url, secret)
        with pytest.raises(AuthenticationError) as refused:
            client.send_batch("import", [import_event()])
        client.close()
    [report] = refused.value.reports
    assert report.reason == WITHHELD
