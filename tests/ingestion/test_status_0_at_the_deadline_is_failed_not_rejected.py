"""A ``status: 0`` answered as the deadline passes leaves its records FAILED, to be sent
again later, not REJECTED as if the retry budget had run out.

Which records Mixpanel refused is found by sending halves again, within the retry budget
and before the deadline. The budget is the request's own, read without the deadline
(``Call.budget_left``); past the deadline the halves are not sent and are reported FAILED
unsent. A mutant reading the deadline into the budget survived every test: a shutdown
clock (the forwarder's, on SIGTERM) passing as the answer came in rejected the whole
request: records Mixpanel had kept were reported refused and dead-lettered, where FAILED
has them sent again, so that the halves find the refused ones by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.ingestion.call import PAST_DEADLINE
from mixpanel_core.ingestion.http import Response
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, event
from .scripted import ScriptedServer, answer, raw

REFUSED = raw("200 OK", b'{"status": 0, "error": "some records failed validation"}')
ACCEPTED = raw("200 OK", b'{"status": 1, "error": null}')


class ShutdownOnAnswer:
    """A caller's wait kept busy while a request is out (as the forwarder's is), whose
    deadline passes the moment the answer arrives."""

    def __init__(self) -> None:
        self.answered = False

    def __call__(self, seconds: float) -> None:
        raise AssertionError(f"no retry is waited for past the deadline ({seconds}s)")

    def while_request_out(self, seconds: float) -> None:
        time.sleep(seconds)

    def request_answered(self, answer: Response | BaseException) -> None:
        self.answered = True

    def deadline(self) -> float | None:
        return time.monotonic() - 1.0 if self.answered else None


def test_the_halves_are_not_sent_and_are_failed(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(answer(REFUSED), answer(ACCEPTED))
    client = IngestionClient(MixpanelSettings(api_host=server.base_url, token=TOKEN), FAST)
    wait = ShutdownOnAnswer()

    result = client.send_batch(
        "track", [event() for _ in range(4)], wait=wait, deadline=wait.deadline
    )

    assert len(server.requests) == 1
    assert [(r.status, r.reason) for r in result.reports] == [
        (DeliveryStatus.FAILED, PAST_DEADLINE)
    ] * 4
