"""Answers Mixpanel's documented API allows (or a proxy on the way may give) that the emulator
cannot be asked for: redirects, odd ``Retry-After`` values, answers cut short or that do not
decode, and the bytes of gzip retries.

Over real sockets: a local server that reads each request whole, keeps it, and writes the
raw answer the test scripted for it.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.ingestion.classify import parse_retry_after
from mixpanel_core.messages import Endpoint
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, RecordingWait, event, import_event, settings_for
from .scripted import Answer, ScriptedServer, answer, raw

TRACK_OK = b'{"status": 1, "error": null}'
IMPORT_OK = b'{"code": 200, "num_records_imported": 1, "status": "OK"}'

OK = answer(raw("200 OK", TRACK_OK))


def client_for(
    server: ScriptedServer, options: HttpOptions = FAST, **settings: Any
) -> IngestionClient:
    values: dict[str, Any] = {"api_host": server.base_url, "token": TOKEN, **settings}
    return IngestionClient(MixpanelSettings(**values), options)


def statuses(client: IngestionClient, endpoint: Endpoint, wait: Any = None) -> list[Any]:
    message = import_event() if endpoint == "import" else event()
    result = client.send_batch(endpoint, [message], wait=wait or RecordingWait())
    return [(r.status, r.reason, r.attempts) for r in result.reports]


# -- redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", ["301 Moved Permanently", "302 Found", "307 Temporary", "308 Permanent"]
)
def test_a_redirect_is_not_followed_and_its_records_are_failed_not_rejected(
    scripted: Callable[..., ScriptedServer], status: str
) -> None:
    """A redirect is not Mixpanel judging the records: REJECTED would dead-letter them as
    refused (and the forwarder would commit past them). Nor is it followed: the request holds
    the /import credentials, and the Location may name any host."""
    elsewhere = scripted(answer(raw("200 OK", IMPORT_OK)))
    location = f"http://user:pw@{elsewhere.base_url[len('http://') :]}/import?api_secret=leak"
    redirecting = scripted(answer(raw(status, b"", f"Location: {location}")))
    client = client_for(redirecting, api_secret=Secret("the-api-secret"))

    [(outcome, reason, attempts)] = statuses(client, "import")

    assert outcome is DeliveryStatus.FAILED
    assert attempts == 1
    assert elsewhere.requests == []
    assert f"redirected to {elsewhere.base_url}/import;" in reason
    for secret in ("pw", "leak", "the-api-secret"):
        assert secret not in reason


# -- Retry-After --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "soon"])
def test_a_retry_after_that_is_no_number_of_seconds_or_date_is_ignored(
    scripted: Callable[..., ScriptedServer], value: str
) -> None:
    """``Retry-After: inf`` made the first wait endless, so the records failed at once."""
    server = scripted(answer(raw("429 Too Many Requests", b"{}", f"Retry-After: {value}")), OK)
    wait = RecordingWait()

    assert statuses(client_for(server), "track", wait) == [(DeliveryStatus.ACCEPTED, None, 2)]
    assert len(wait.delays) == 1
    assert wait.delays[0] <= FAST.rate_limit_cap


def test_a_retry_after_longer_than_the_budget_is_named_in_the_reason(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(answer(raw("429 Too Many Requests", b"{}", "Retry-After: 3600")))
    client = client_for(server, HttpOptions(retry_budget=2.0))

    [(outcome, reason, attempts)] = statuses(client, "track")

    assert (outcome, attempts) == (DeliveryStatus.FAILED, 1)
    assert reason.startswith("gave up after 1 attempt(s) (the answer asked to wait 3600.0s")
    assert "Retry-After" in reason
    assert reason.endswith("HTTP 429: {}")


@pytest.fixture
def five_hours_west_of_greenwich() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Etc/GMT+5"  # POSIX sign: UTC-5
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.usefixtures("five_hours_west_of_greenwich")
@pytest.mark.parametrize(
    "form",
    [
        lambda t: email.utils.formatdate(t, usegmt=True),  # IMF-fixdate
        lambda t: time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(t)),  # asctime
        lambda t: email.utils.formatdate(t).replace("+0000", "-0000"),
    ],
    ids=["imf-fixdate", "asctime", "minus-0000"],
)
def test_an_http_date_is_gmt_whatever_the_local_time_zone(form: Callable[[float], str]) -> None:
    """Read as local time, an ``asctime`` date 30 s ahead came out 5 hours and 30 s ahead."""
    seconds = parse_retry_after(form(time.time() + 30))
    assert seconds is not None
    assert 25 <= seconds <= 31


# -- answers cut short or unreadable ------------------------------------------------------


@pytest.mark.parametrize(
    "broken",
    [
        answer(raw("200 OK", TRACK_OK)[:-10], reset=True),
        answer(raw("200 OK", TRACK_OK)[: -len(TRACK_OK)], reset=True),
        answer(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1c\r\n{"sta', reset=True),
        answer(raw("200 OK", b"not gzip at all", "Content-Encoding: gzip")),
    ],
    ids=["cut-mid-body", "reset-after-headers", "chunked-cut", "does-not-decode"],
)
def test_an_answer_cut_short_or_unreadable_is_retried(
    scripted: Callable[..., ScriptedServer], broken: Answer
) -> None:
    """An answer that does not decode was FAILED at once; it shows no more than a 200
    without Mixpanel's success body, which is retried."""
    server = scripted(broken, OK)

    assert statuses(client_for(server), "track") == [(DeliveryStatus.ACCEPTED, None, 2)]
    assert len({body for _, body in server.requests}) == 1


# -- gzip ---------------------------------------------------------------------------------


def test_gzip_retries_resend_the_very_same_bytes(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Each attempt compressed the body again, stamping the time of that compression into
    the gzip header: a retry a second later sent different bytes."""
    failing = answer(raw("503 Service Unavailable", b"{}"))
    server = scripted(failing, OK)
    options = HttpOptions(gzip=True, backoff_base=1.1, backoff_cap=1.1, retry_budget=10)

    outcome = statuses(client_for(server, options), "track", wait=lambda s: time.sleep(1.1))

    assert outcome == [(DeliveryStatus.ACCEPTED, None, 2)]
    bodies = [body for _, body in server.requests]
    assert len(bodies) == 2
    assert bodies[0] == bodies[1]
    assert b"content-encoding: gzip" in server.requests[0][0].lower()


def test_a_5xx_page_is_quoted_on_one_line(scripted: Callable[..., ScriptedServer]) -> None:
    """A proxy's HTML page went into the reason as it came, newlines and all: one logged
    reason spanned several log lines, and the server chose their text."""
    page = b"<html>\n<body>\n  <h1>502 Bad Gateway</h1>\n</body>\n</html>\n"
    server = scripted(answer(raw("502 Bad Gateway", page, "Content-Type: text/html")))
    client = client_for(server, HttpOptions(retry_budget=0))

    [(outcome, reason, _)] = statuses(client, "track")

    assert outcome is DeliveryStatus.FAILED
    assert reason.endswith("HTTP 502: <html> <body> <h1>502 Bad Gateway</h1> </body> </html>")


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_max_retries_bounds_the_retries_of_a_request(
    mixpanel_emulator: Emulator, max_retries: int
) -> None:
    """``max_retries``: the first attempt and at most that many retries, then FAILED, saying
    why, however much of ``retry_budget`` is left."""
    mixpanel_emulator.client.fail_fraction(1.0, [503])
    options = attrs.evolve(FAST, max_retries=max_retries)
    client = IngestionClient(settings_for(mixpanel_emulator), options)
    result = client.send_batch("track", [event()])
    requests = mixpanel_emulator.client.stats()["requests"]["track"]["503"]
    assert requests == max_retries + 1
    (report,) = result.reports
    assert report.status is DeliveryStatus.FAILED
    assert report.attempts == max_retries + 1
    retries = "1 retry" if max_retries == 1 else f"{max_retries} retries"
    assert f"(the limit of {retries})" in (report.reason or "")


def test_max_retries_below_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="max_retries: must be 0 or more, not -1"):
        HttpOptions(max_retries=-1)
