"""A ``Retry-After`` that stops the retry is named in the reason, also when it is shorter than
what is left of the budget: the client gives up on the wait plus the time a retry needs for
its answer, and the reason compares the same sum (review R75 F3).

Before, a 429 asking for 9.5 s under a 10 s budget was given up at once (9.5 s + 1 s > 10 s)
with "within the retry budget", as if the budget and not the server had ended it.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, event
from .scripted import ScriptedServer, answer, raw

ACCEPTED = raw("200 OK", b'{"status": 1, "error": null}')


def rate_limited(retry_after: str) -> bytes:
    return raw("429 Too Many Requests", b"rl", f"Retry-After: {retry_after}")


def test_a_retry_after_that_leaves_too_little_for_an_answer_is_named(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(answer(rate_limited("9.5")))
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    client = IngestionClient(settings, attrs.evolve(FAST, retry_budget=10.0))

    report = client.send_batch("track", [event()]).reports[0]

    assert len(server.requests) == 1
    assert (report.status, report.retry_after) == (DeliveryStatus.FAILED, 9.5)
    reason = report.reason or ""
    assert reason.startswith(
        "gave up after 1 attempt(s) (the answer asked to wait 9.5s with Retry-After and the "
        "1.0s a retry needs after it, more than the "
    ), reason
    assert "within the retry budget" not in reason


def test_a_retry_after_longer_than_the_budget_is_named_as_before(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(answer(rate_limited("30")))
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    client = IngestionClient(settings, attrs.evolve(FAST, retry_budget=10.0))

    reason = client.send_batch("track", [event()]).reports[0].reason or ""

    assert "(the answer asked to wait 30.0s with Retry-After, more than the " in reason


def test_a_backoff_that_stops_the_retry_is_not_blamed_on_a_short_retry_after(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """The 429 backoff (at least 25 s here) is what does not fit, not the 1 s asked for."""
    server = scripted(answer(rate_limited("1")))
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    options = attrs.evolve(FAST, retry_budget=10.0, rate_limit_base=50.0, rate_limit_cap=50.0)
    client = IngestionClient(settings, options)

    reason = client.send_batch("track", [event()]).reports[0].reason or ""

    assert reason.startswith("gave up after 1 attempt(s) within the retry budget: HTTP 429"), reason


def test_a_short_retry_after_is_waited_and_the_retry_made(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(answer(rate_limited("0.1")), answer(ACCEPTED))
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    client = IngestionClient(settings, attrs.evolve(FAST, retry_budget=10.0))

    report = client.send_batch("track", [event()]).reports[0]

    assert (report.status, report.attempts, len(server.requests)) == (
        DeliveryStatus.ACCEPTED,
        2,
        2,
    )
