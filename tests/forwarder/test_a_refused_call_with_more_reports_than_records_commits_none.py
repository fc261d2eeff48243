"""A 401/403 whose call returned more reports than it had records still stops the forwarder
with the refused credentials, committing none of them (delivery_rounds.py): reports that do
not match the records one for one cannot say which record each is about, whichever way they
miss. Trusted, they would be paired off with the wrong records (or raise a ``ValueError``
that hides the refusal the operator must fix).

The test_loop_stopping twin covers a call returning fewer reports than records.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, Wait
from mixpanel_core.messages import Endpoint, Message

from .test_loop import TOPIC, ScriptedConsumer, _config, _partition, _records


def test_a_refused_call_with_more_reports_than_records_commits_none_of_them() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(2))}]

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        accepted = [DeliveryReport(m, DeliveryStatus.ACCEPTED, "test") for m in messages]
        raise AuthenticationError("refused", [*accepted, accepted[0]])  # three for two

    forwarder = Forwarder(consumer, TOPIC, deliver, _config())

    with pytest.raises(AuthenticationError):
        forwarder.run()

    assert consumer.commits == []
