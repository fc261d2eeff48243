"""``Redactor``: which values of the configuration it names by their key path, and how (what
a third party's exception says: see test_mp_inner_secrets and test_pipeline_build_errors)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

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


def test_the_credentials_of_a_table_are_named_and_its_other_values_left() -> None:
    """Values under a key that names a credential, at any depth, and the password of a URL;
    a path, a host or a size is no secret, and replacing them would garble the text."""
    redact = redactor(
        password="hunter2-pw",
        salt="pepper-salt",
        close="raise",
        size=5000,
        nested={"api_key": "tok-1234"},
        sasl={"plain": ["pw-in-a-list"]},
        proxy="http://svc:Pr0xy%40Pw@proxy.internal:3128",
        path="file",
        flag=True,
    )
    assert redact("pw hunter2-pw; raise 5000 file True; pepper-salt") == (
        "pw <transports.archive.password>; raise 5000 file True; <transports.archive.salt>"
    )
    assert redact("tok-1234 at proxy.internal as svc:Pr0xy@Pw (svc:Pr0xy%40Pw)") == (
        "<transports.archive.nested.api_key> at proxy.internal as "
        "svc:<transports.archive.proxy (its password)> "
        "(svc:<transports.archive.proxy (its password)>)"
    )
    assert redact("pw-in-a-list") == "pw-in-a-list"  # ``sasl.plain``: no credential named


def test_a_credential_is_named_in_the_spellings_an_exception_gives_it() -> None:
    """``int()`` quotes its argument with repr (a backslash doubled), a URL percent-encodes
    (a form, its space as ``+``)."""
    redact = redactor(password="it's\\a\"p@ss/w+rd 2")
    secret = "it's\\a\"p@ss/w+rd 2"
    for spelling in (secret, repr(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)):
        assert redact(f"<<{spelling}>>") == "<<<transports.archive.password>>>", spelling


def test_the_longest_value_is_named_whole() -> None:
    """A value holding another is replaced whole; a key path put in is not searched again."""
    redact = redactor(password="hunter2-pw", token="hunter2")
    assert redact("hunter2-pw hunter2") == (
        "<transports.archive.password> <transports.archive.token>"
    )
