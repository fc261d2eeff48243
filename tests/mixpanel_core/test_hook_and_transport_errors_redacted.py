"""What a plugin's hook or a transport raises reaches our errors and logs with no credential.

docs/errors.md says that in the text of a third party's exception carried into our errors,
reports and logs, each credential given to it is named by its key path. That held for a
``from_config`` that raised and for an inner transport of ``multiprocessing_queue``, but not
for: a hook that raised (the ``PluginError`` quoted it, and kept it as its cause), a transport
refusing a message sent to several (``PartialSendError``'s text and ``errors``), and a
``mixpanel_delivered`` observer that raised (its traceback, logged). A review found each with a
plugin quoting its own ``api_key`` and ``[mixpanel] api_secret``. Also: what a transport raises
from ``send``, ``flush`` or ``close`` and reaches the caller as it is now names the transport in
a note, as a ``PartialSendError`` did.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import PartialSendError, PluginError, TransportError
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.testing import ReportCollector, install_distribution

SECRET = "APISECRET-4d1f9c"
KEY = "PLUGINKEY-77ab02"
PASSWORD = "TPASS-e51c3a"
PASSWORD_2 = "TPASS-90d7ee"

ACME = f"""
import base64
import os
from mixpanel_core.errors import TransportError
from mixpanel_core.hookspecs import hookimpl


class Acme:
    '''An enricher and an observer that raise, quoting their credentials, when told to.'''

    @classmethod
    def from_config(cls, context):
        return cls(context.options["api_key"])

    def __init__(self, key):
        self.key = key

    @hookimpl
    def mixpanel_enrich(self, message):
        if os.environ.get("ACME_ENRICH") == "quote":
            raise RuntimeError(f"upstream refused key={{self.key}} secret={SECRET}")
        if os.environ.get("ACME_ENRICH") == "plain":
            raise RuntimeError("upstream is down")
        return None

    @hookimpl
    def mixpanel_delivered(self, report):
        if os.environ.get("ACME_OBSERVE") == "quote":
            raise RuntimeError(f"audit store refused key={{self.key}}")


class Archive:
    '''A transport whose send, flush and close raise when told to.'''

    @classmethod
    def from_config(cls, options, context):
        return cls(options["password"])

    def __init__(self, password):
        self.password = password

    def send(self, message):
        if os.environ.get("ACME_SEND") == "refuse":
            raise TransportError(f"archive refused login with password {{self.password}}")
        if os.environ.get("ACME_SEND") == "oserror":
            raise OSError(28, "No space left on device")
        if os.environ.get("ACME_SEND") == "quote_headers":
            # What an HTTP library's error may quote: the request's Authorization header,
            # built from the call's api_secret, or else from [mixpanel] api_secret.
            secret = message.auth.api_secret.reveal() if message.auth else "{SECRET}"
            basic = base64.b64encode(f"{{secret}}:".encode()).decode()
            raise TransportError(f"401 for Authorization: Basic {{basic}} ({{secret}})")

    def flush(self, timeout=None):
        if os.environ.get("ACME_FLUSH") == "raise":
            raise OSError("stale NFS handle")
        if os.environ.get("ACME_FLUSH") == "quote":
            raise OSError(f"NFS refused password {{self.password}}")
        return []

    def close(self, timeout=None):
        return []


class Exiting(Archive):
    # An Archive whose clean-up at exit, registered as docs/transports/index.md says, raises
    # quoting its password.

    def __init__(self, password):
        super().__init__(password)
        from mixpanel_core.process_exit import at_exit, owned

        self.cancel = at_exit(owned(self, self.exploding))

    def exploding(self):
        raise RuntimeError(f"exit flush refused password {{self.password}}")
"""


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    install_distribution(
        tmp_path,
        "acme-redaction-probe",
        {
            "mixpanel_core.plugins": {"acme": "acme_probe:Acme"},
            "mixpanel_core.transports": {
                "archive": "acme_probe:Archive",
                "exiting": "acme_probe:Exiting",
            },
        },
        {"acme_probe": ACME},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("acme_probe", None)  # imported from tmp_path: not for other tests


def client(*routes: str) -> Mixpanel:
    """A client with the ``acme`` plugin, a memory transport and the ``archive`` transport;
    every message goes to ``routes``."""
    config = config_from_mapping(
        {
            "mixpanel": {"token": "token", "api_secret": SECRET},
            "plugins": {"enabled": ["acme", "router"], "acme": {"api_key": KEY}},
            "transports": {
                "memory": {"type": "memory"},
                "archive": {"type": "archive", "password": PASSWORD},
                "spare": {"type": "archive", "password": PASSWORD_2},
            },
            "routes": [{"transport": list(routes)}],
        }
    )
    return Mixpanel("token", config=config)


def printed(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


@pytest.mark.usefixtures("acme")
def test_a_hook_that_quotes_credentials_is_told_redacted_without_its_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACME_ENRICH", "quote")
    with pytest.raises(PluginError) as raised:
        client("memory").track("u", "Signed up")

    text = str(raised.value)
    assert text.startswith(
        "plugin 'acme' failed in mixpanel_enrich: RuntimeError: upstream refused "
        "key=<plugins.acme.api_key> secret=<mixpanel.api_secret> (raised at "
    )
    assert (raised.value.plugin, raised.value.hook) == ("acme", "mixpanel_enrich")
    assert raised.value.__cause__ is None  # a traceback of it would print both whole
    assert raised.value.__context__ is None  # nor is it reachable there (review R12)
    for secret in (KEY, SECRET):
        assert secret not in printed(raised.value)


@pytest.mark.usefixtures("acme")
def test_a_hook_that_quotes_none_keeps_its_exception_as_the_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACME_ENRICH", "plain")
    with pytest.raises(PluginError) as raised:
        client("memory").track("u", "Signed up")

    assert str(raised.value) == (
        "plugin 'acme' failed in mixpanel_enrich: RuntimeError: upstream is down"
    )
    assert isinstance(raised.value.__cause__, RuntimeError)


@pytest.mark.usefixtures("acme")
def test_a_refusal_among_several_transports_is_told_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACME_SEND", "refuse")
    with pytest.raises(PartialSendError) as raised:
        client("memory", "archive").track("u", "Signed up")

    error = raised.value
    assert error.taken_by == ("memory",)
    assert str(error).startswith(
        "taken by transports: memory; refused by archive: TransportError: archive refused "
        "login with password <transports.archive.password> (raised at "
    )
    kept: Any = error.errors["archive"]
    assert isinstance(kept, TransportError)
    assert PASSWORD not in printed(error)
    assert PASSWORD not in str(kept)
    assert error.__context__ is None


@pytest.mark.usefixtures("acme")
def test_a_refusal_by_the_only_transport_quoting_a_credential_is_told_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review R12: the same refusal by a message's only transport reached the caller whole."""
    monkeypatch.setenv("ACME_SEND", "refuse")
    with pytest.raises(TransportError) as raised:
        client("archive").track("u", "Signed up")
    assert str(raised.value).startswith(
        "transport 'archive' raised in send: TransportError: archive refused login with "
        "password <transports.archive.password> (raised at "
    )
    assert (raised.value.__cause__, raised.value.__context__) == (None, None)


@pytest.mark.usefixtures("acme")
def test_flushes_that_fail_quoting_credentials_are_logged_and_raised_redacted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Review R12: the second transport's failure, logged, and the line saying what the others
    hold, quoted passwords whole."""
    monkeypatch.setenv("ACME_FLUSH", "quote")
    mixpanel = client("memory", "archive", "spare")
    mixpanel.track("u", "Signed up")
    with caplog.at_level(logging.ERROR), pytest.raises(TransportError) as raised:
        mixpanel.flush()
    assert "NFS refused password <transports." in str(raised.value)
    assert "failed too: OSError: NFS refused password <transports." in caplog.text
    for secret in (PASSWORD, PASSWORD_2):
        assert secret not in caplog.text
        assert secret not in printed(raised.value)
    monkeypatch.setenv("ACME_FLUSH", "")
    mixpanel.close()


EXITING = """
import logging, sys
from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping

logging.basicConfig(level=logging.INFO)
config = config_from_mapping(
    {
        "mixpanel": {"token": "token"},
        "transports": {"bus": {"type": "exiting", "password": sys.argv[1]}},
    }
)
Mixpanel("token", config=config).track("u", "Signed up")
"""


@pytest.mark.usefixtures("acme")
def test_a_clean_up_at_exit_that_quotes_a_credential_is_logged_redacted(
    tmp_path: Path,
) -> None:
    """Review R12: a third-party transport's clean-up at exit that raised was logged with its
    traceback whole."""
    script = tmp_path / "exiting.py"
    script.write_text(EXITING)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(script), PASSWORD],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert "a clean-up at exit failed" in done.stderr, done.stderr
    assert "exit flush refused password <transports.bus.password>" in done.stderr, done.stderr
    assert PASSWORD not in done.stderr


@pytest.mark.usefixtures("acme")
def test_an_observer_that_quotes_a_credential_is_logged_redacted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ACME_OBSERVE", "quote")
    mixpanel = client("memory")
    with caplog.at_level(logging.ERROR, logger="mixpanel_core.pipeline"):
        mixpanel.track("u", "Signed up")
        mixpanel.close()

    [record] = [r for r in caplog.records if "mixpanel_delivered" in r.getMessage()]
    logged = record.getMessage()
    assert logged.startswith(
        "plugin 'acme' failed in mixpanel_delivered: RuntimeError: audit store refused "
        "key=<plugins.acme.api_key> (raised at "
    )
    assert "Traceback (most recent call last)" in logged
    assert record.exc_info is None  # a handler given the exception would print it whole
    assert KEY not in caplog.text


@pytest.mark.usefixtures("acme")
def test_what_one_transport_raises_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_SEND", "oserror")
    mixpanel = client("archive")
    with pytest.raises(OSError, match="No space left on device") as raised:
        mixpanel.track("u", "Signed up")
    assert raised.value.__notes__ == ["(raised by transport 'archive' in send)"]

    monkeypatch.setenv("ACME_SEND", "")
    monkeypatch.setenv("ACME_FLUSH", "raise")
    with pytest.raises(OSError, match="stale NFS handle") as raised:
        mixpanel.flush()
    assert raised.value.__notes__ == ["(raised by transport 'archive' in flush)"]


CALL_SECRET = "CALLSECRET-51b0aa"


@pytest.mark.usefixtures("acme")
def test_the_calls_api_secret_and_its_basic_header_are_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review R15: an ``api_secret`` given with ``import_data`` was known to no redactor, and
    the Basic ``Authorization`` value built from a secret was not one of its spellings."""
    monkeypatch.setenv("ACME_SEND", "quote_headers")
    mixpanel = client("archive")
    with pytest.raises(TransportError) as raised:
        mixpanel.import_data(
            "key", "u", "Signed up", time.time() - 60, {"$insert_id": "a1"}, api_secret=CALL_SECRET
        )
    text = printed(raised.value)
    assert "<the api_secret given with the call (Basic)>" in text, text
    assert "<the api_secret given with the call>" in text, text
    assert CALL_SECRET not in text
    assert base64.b64encode(f"{CALL_SECRET}:".encode()).decode() not in text

    with pytest.raises(TransportError) as raised:
        mixpanel.track("u", "Signed up")  # no secret with the call: [mixpanel] api_secret's
    text = printed(raised.value)
    assert "<mixpanel.api_secret (Basic)>" in text, text
    assert base64.b64encode(f"{SECRET}:".encode()).decode() not in text


class QuotingConsumer:
    """An official-style consumer whose refusal quotes the request's Authorization header, as
    an HTTP library's error may."""

    def send(self, endpoint: str, json_message: str, api_key: object = None) -> None:
        secret = api_key[1] if isinstance(api_key, tuple) else None
        basic = base64.b64encode(f"{secret}:".encode()).decode()
        raise RuntimeError(f"refused: Authorization: Basic {basic}")


def test_a_calls_api_secret_is_redacted_in_the_report_of_a_consumers_refusal() -> None:
    """Review R16: an official-style consumer's refusal quoted the call's secret in its FAILED
    report (the error raised was redacted); review R17: so it did for a call after the one
    that built the transport."""
    collector = ReportCollector()
    mixpanel = memory_client_for(QuotingConsumer(), collector)
    with pytest.raises(RuntimeError):
        mixpanel.track("u", "Builds the transport")  # no secret: raised as it is
    for n, secret in enumerate((CALL_SECRET, "LATERSECRET-0c77e2")):
        with pytest.raises(TransportError) as refused:  # in the RuntimeError's place
            mixpanel.import_data(
                "key",
                "u",
                "Signed up",
                time.time() - 60,
                {"$insert_id": f"b{n}"},
                api_secret=secret,
            )
        basic = base64.b64encode(f"{secret}:".encode()).decode()
        assert basic not in printed(refused.value)
        report = collector.reports[-1]
        assert report.reason == (
            "refused: Authorization: Basic <the api_secret given with the call (Basic)>"
        ), report.reason


def memory_client_for(consumer: object, collector: ReportCollector) -> Mixpanel:
    """A client sending through ``consumer`` (an official-style one), its reports collected."""
    config = config_from_mapping({"mixpanel": {"token": "token"}})
    pipeline = Pipeline([("reports", collector)], {"default": consumer}, config)
    return Mixpanel("token", config=config, pipeline=pipeline)
