"""A ``Secret`` shows no value however it is turned into text: ``str()``, an f-string and
``%s`` (what a log line or an error message built around it uses), not only ``repr``."""

from __future__ import annotations

from mixpanel_core.secrets import Secret


def test_a_secret_turned_into_text_any_way_shows_no_value() -> None:
    secret = Secret("hunter2-value")

    for text in (str(secret), f"{secret}", "%s" % secret, repr(secret), f"{secret!r}"):  # noqa: UP031
        assert "hunter2" not in text
    assert secret.reveal() == "hunter2-value"
