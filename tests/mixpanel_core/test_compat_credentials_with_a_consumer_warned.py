"""``credentials=`` given with a consumer are ignored, and said to be, as the official client
says it (review R55 F2): a user moving them onto the client keeps a hint why ``/import``
does not authenticate with them."""

from __future__ import annotations

import logging

import mixpanel
import pytest

from mixpanel_core import compat


class Discarding:
    def send(self, endpoint: str, json_message: str, api_key: object = None) -> None:
        pass


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_credentials_given_with_a_consumer_are_said_to_be_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        mixpanel.Mixpanel(
            "TOKEN", Discarding(), credentials=mixpanel.ServiceAccountCredentials("u", "s", "1")
        )
    official = _warnings(caplog)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        compat.Mixpanel(
            "TOKEN", Discarding(), credentials=compat.ServiceAccountCredentials("u", "s", "1")
        )
    assert _warnings(caplog) == official
    assert "ignored when a custom consumer is provided" in official[0]


def test_credentials_without_a_consumer_are_used_without_a_word(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        compat.Mixpanel("TOKEN", credentials=compat.ServiceAccountCredentials("u", "s", "1"))
    assert _warnings(caplog) == []
