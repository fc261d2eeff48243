"""A message's ``repr`` (in a log line, an error, a delivery report's ``repr``) shows its
record and none of the legacy credentials ``import_data`` and ``merge`` were given: the
``api_key`` is a plain string, which only the message's ``repr`` keeps out of sight."""

from __future__ import annotations

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.testing import memory_client


def test_an_imported_message_and_its_report_show_no_credentials() -> None:
    client, transport = memory_client()

    client.import_data("key-a1b2c3", "user-1", "E", 1_600_000_000, api_secret="secret-d4e5f6")
    client.merge("key-a1b2c3", "user-1", "user-2", api_secret="secret-d4e5f6")

    for message in transport.messages:
        assert message.auth is not None
        report = DeliveryReport(message, DeliveryStatus.FAILED, "memory", "refused")
        for text in (repr(message), str(message), repr(report)):
            assert "user-1" in text
            assert "a1b2c3" not in text
            assert "d4e5f6" not in text
