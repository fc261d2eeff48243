"""``Redactor``: which values of the configuration it names by their key path, and how (what
a third party's exception says: see test_mp_inner_secrets and test_pipeline_build_errors)."""

from __future__ import annotations

from typing import Any

from mixpanel_core.config import config_from_mapping
from mixpanel_core.redactor import Redactor


def redactor(**archive: Any) -> Redactor:
    conf = config_from_mapping(
        {
            "mixpanel": {"token": "t", "api_secret": "abc", "service_account_username": "u"}
            | {"service_account_secret": "sa-secret-1", "project_id": "1"},
            "transports": {"archive": {"type": "raising", **archive}},
        }
    )
    return Redactor(conf.mixpanel, conf.transports["archive"].options, "transports.archive")


def test_a_secret_is_named_wherever_it_appears() -> None:
    """Even short, even glued to other text: a credential is one wherever it is."""
    redact = redactor()
    assert redact("key=abc;sa=xsa-secret-1x") == (
        "key=<mixpanel.api_secret>;sa=x<mixpanel.service_account_secret>x"
    )


def test_a_table_value_is_named_as_a_whole_word_of_4_characters_or_more() -> None:
    redact = redactor(
        password="hunter2-pw",
        close="raise",
        batch=500,
        size=5000,
        nested={"token": "tok-1234"},
        hosts=["host-a.example"],
        flag=True,
    )
    assert redact("pw hunter2-pw; raise, not raised; 500 of 5000") == (
        "pw <transports.archive.password>; <transports.archive.close>, not raised; "
        "500 of <transports.archive.size>"
    )
    assert redact("tok-1234 at host-a.example:443 True") == (
        "<transports.archive.nested.token> at <transports.archive.hosts[0]>:443 True"
    )


def test_the_longest_value_is_named_whole() -> None:
    """A value holding another is replaced whole; a key path put in is not searched again."""
    redact = redactor(password="hunter2-pw", user="hunter2")
    assert redact("hunter2-pw hunter2") == (
        "<transports.archive.password> <transports.archive.user>"
    )
