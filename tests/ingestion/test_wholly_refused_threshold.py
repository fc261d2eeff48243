"""The rule that stops narrowing down a batch refused whole applies from a first half of
exactly ``WHOLLY_REFUSED`` records, as its docstring says (``half >= WHOLLY_REFUSED``).

Written from a mutation audit: applying it only to larger halves failed no test; a batch of
32 refused records then cost 63 requests instead of 33.
"""

from __future__ import annotations

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.ingestion.narrowing import WHOLLY_REFUSED

from .conftest import event

pytestmark = pytest.mark.integration


def test_a_first_half_of_exactly_the_threshold_wholly_refused_stops_the_search(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    messages = [event(token="not-a-project-token") for _ in range(2 * WHOLLY_REFUSED)]
    result = client.send_batch("track", messages)
    assert {r.status for r in result.reports} == {DeliveryStatus.REJECTED}
    # The whole batch once, its first half narrowed down to single records (2 x 16 - 1),
    # its second half once, rejected whole.
    requests = sum(mixpanel_emulator.client.stats()["requests"]["track"].values())
    assert requests == 1 + (2 * WHOLLY_REFUSED - 1) + 1
    second = result.reports[WHOLLY_REFUSED:]
    assert all("were all refused too" in (r.reason or "") for r in second)
