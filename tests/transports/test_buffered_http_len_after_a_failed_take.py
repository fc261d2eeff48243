"""``len()`` of a background sender counts what is queued or being sent, and nothing after.

A take the thread could not cut into requests is reported FAILED and is done with: it is no
longer being sent. A mutant that left it counted as in flight (``len()`` said 3 for ever after,
with nothing queued or out) survived every other test.
"""

from __future__ import annotations

import pytest

from mixpanel_core import sender_loop
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator

from .test_buffered_http import make_event, transport_for

pytestmark = pytest.mark.integration


def test_a_take_reported_failed_before_any_request_is_no_longer_counted(
    mixpanel_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a bug while cutting batches")

    monkeypatch.setattr(sender_loop, "split_encoded", fails)
    reports: list[DeliveryReport] = []
    transport = transport_for(mixpanel_emulator, reports, linger=10.0, max_batch_records=3)
    for n in range(3):
        transport.send(make_event("counted", n))
    assert transport.flush(10) == []
    assert [r.status for r in reports] == [DeliveryStatus.FAILED] * 3
    assert len(transport.sender) == 0
    transport.close(5)
