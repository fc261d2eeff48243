"""A configuration's ``repr`` (in logs, tracebacks, a debugger) shows no ``urls`` query.

``[mixpanel] urls.NAME`` may carry a query, sent as written; the docs ask for no credential
there, but one put there anyway (``?api_secret=...``) showed in ``repr(Config)``. Error
messages already cut queries to ``?...``; the ``repr`` now does too, and the URL itself is
kept whole for sending.
"""

from __future__ import annotations

from mixpanel_core.config import config_from_mapping

URL = "https://ingest.example.com/import?api_secret=S3CR3T-canary"


def test_the_repr_of_the_settings_and_the_config_cuts_each_query() -> None:
    config = config_from_mapping(
        {"mixpanel": {"token": "t", "urls": {"import": URL, "track": "https://h.example/t"}}},
        environ={},
    )
    for shown in (repr(config), repr(config.mixpanel), str(config.mixpanel)):
        assert "S3CR3T" not in shown
        assert "'import': 'https://ingest.example.com/import?...'" in shown
        assert "'track': 'https://h.example/t'" in shown
    assert config.mixpanel.urls["import"] == URL  # sent as written
