"""``Redactor``: replaces the credentials a third party's exception may quote by key paths.

What a plugin or transport of someone else's raised goes into our errors, reports and logs
(a ``from_config`` that failed, an inner transport of ``multiprocessing_queue`` that raised).
That text may quote a credential (an HTTP library's error quoting the request), and no error
of ours may hold one (docs/errors.md). The code was given the ``[mixpanel]`` settings, whose
``Secret`` values it may reveal, and its own table, which is raw (a password in it is a plain
string: only ``read`` makes it a ``Secret``). So the credentials among them are replaced by
their key paths: the text still says which value it was, and holds none. The other values of
the table (a path, a host, a size) are no secret and are left, to keep the text useful.
"""

from __future__ import annotations

import base64
import html
import json
import re
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus, unquote, urlsplit

import attrs

from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

if TYPE_CHECKING:
    from mixpanel_core.config import Config

CALL_SECRET = "the api_secret given with the call"
"""What a call's own API secret (``import_data(..., api_secret=...)``) is replaced by."""

CREDENTIAL_KEY = re.compile(r"pass|pwd|secret|token|key|salt|auth|cred|private|pin|signature")
"""A table key whose value is taken for a credential (``password``, ``api_key``,
``sasl_plain_password``, ``salt``, ...), matched in its lower case, anywhere in it."""


class Redactor:
    """Replaces, in a text, each credential given to a plugin or transport by its key path.

    The credentials: every ``Secret`` of ``[mixpanel]``, and the Basic ``Authorization``
    value ``/import`` is sent with (``ingestion.auth``); every value of the plugin's or
    transport's own table under a key that names one (``CREDENTIAL_KEY``) or held in a
    ``Secret``; the password of every URL in that table (``http://user:pw@proxy``); and one
    given with a call (``with_call``). Each is replaced wherever it appears and in the spellings an
    exception's text may hold it (see ``_spellings``). Meant for an exception's text (and
    traceback), which is someone else's.
    """

    def __init__(self, settings: MixpanelSettings, table: Mapping[str, object], path: str) -> None:
        """``table``: the plugin's or transport's own table, whose key path is ``path``."""
        found: dict[str, str] = {}
        for field in attrs.fields(MixpanelSettings):
            value = getattr(settings, field.name)
            if isinstance(value, Secret):
                found.setdefault(value.reveal(), f"mixpanel.{field.name}")
        username, secret = settings.service_account_username, settings.service_account_secret
        if username is not None and secret is not None and secret.reveal():
            found.setdefault(
                _basic(username, secret.reveal()), "mixpanel.service_account_secret (Basic)"
            )
        if settings.api_secret is not None and settings.api_secret.reveal():
            found.setdefault(
                _basic(settings.api_secret.reveal(), ""), "mixpanel.api_secret (Basic)"
            )
        _credentials_in(table, path, found, credential=False)
        self._set(found)

    def _set(self, found: Mapping[str, str]) -> None:
        paths: dict[str, str] = {}
        for value, where in found.items():
            for spelling in _spellings(value) if value else ():
                paths.setdefault(spelling, where)
        self._found = dict(found)
        self._paths = paths
        # One pass, the longest first: a value that holds another is replaced whole, and a key
        # path put in is not searched again.
        pieces = [re.escape(value) for value in sorted(paths, key=len, reverse=True)]
        self._pattern = re.compile("|".join(pieces)) if pieces else None

    @classmethod
    def of_settings(cls, settings: MixpanelSettings) -> Redactor:
        """For texts that quote no table of a plugin or transport: ``[mixpanel]``'s only."""
        return cls(settings, {}, "mixpanel")

    def with_call(self, secret: Secret | None) -> Redactor:
        """This redactor, and the API secret a message came with (``Message.auth``), as it
        is and as its Basic value: a new one (made for an error, which is rare), as each
        message may come with another."""
        if secret is None or not secret.reveal():
            return self
        more = dict(self._found)
        more.setdefault(secret.reveal(), CALL_SECRET)
        more.setdefault(_basic(secret.reveal(), ""), f"{CALL_SECRET} (Basic)")
        other = object.__new__(Redactor)
        other._set(more)
        return other

    @property
    def knows_none(self) -> bool:
        """Whether it was given no credential at all: then it never changes a text."""
        return self._pattern is None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: f"<{self._paths[match.group(0)]}>", text)


class Redactors:
    """A ``Redactor`` for each plugin and transport of ``config``, made when first needed:
    only an error needs one, and most pipelines never meet one."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._made: dict[str, Redactor] = {}

    def plugin(self, name: str) -> Redactor:
        """For what plugin ``name`` raised: its ``[plugins.NAME]`` table and ``[mixpanel]``."""
        return self._for(f"plugins.{name}", self._config.plugin_options.get(name, {}))

    def transport(self, name: str, call: Secret | None = None) -> Redactor:
        """For what transport ``name`` raised: its ``[transports.NAME]`` table (none for a
        transport given as an object) and ``[mixpanel]``; ``call``: the API secret the message
        it was sending came with (``Message.auth``), if any."""
        options = getattr(self._config.transports.get(name), "options", None)
        made = self._for(f"transports.{name}", options if isinstance(options, Mapping) else {})
        return made.with_call(call)

    def _for(self, path: str, table: Mapping[str, object]) -> Redactor:
        made = self._made.get(path)
        if made is None:
            made = self._made[path] = Redactor(self._config.mixpanel, table, path)
        return made


def told(error: BaseException, redact: Callable[[str], str]) -> tuple[str, BaseException | None]:
    """What an error of ours says of someone else's ``error``: ``TYPE: TEXT``, its text
    redacted; and the exception to chain as that error's ``__cause__``: ``error``, unless a
    credential stands in what a traceback of it prints (its text, the exceptions it chains or
    groups, its notes), which goes whole into every log that records it: then ``None``, and
    the text ends with the file and line ``error`` was raised at instead."""
    said = f"{type(error).__name__}: {redact(str(error))}"
    if getattr(redact, "knows_none", False):
        return said, error  # no credential to look for: nothing to format (a hot failure path)
    printed = "".join(traceback.format_exception(error))
    if redact(printed) == printed:
        return said, error
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (raised at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return said + where, None


def redacted_traceback(error: BaseException, redact: Callable[[str], str]) -> str:
    """The traceback of ``error`` as ``logging.exception`` prints it, redacted."""
    return redact("".join(traceback.format_exception(error)).rstrip())


def _basic(username: str, password: str) -> str:
    """The base64 part of an HTTP Basic ``Authorization`` value (``ingestion.auth.basic``):
    an error quoting the request's headers holds it, and it decodes to the secret."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _spellings(value: str) -> set[str]:
    """``value`` as an exception's text or a server's answer may hold it: as it is, escaped
    as ``repr`` writes it (``int()`` quotes its argument with ``repr``: a backslash or quote
    in it is doubled), as JSON writers do (Python's, PHP's ``\\/``, Go's ``\\u0026``),
    as HTML does (``&amp;``), and percent-encoded as it goes into a URL (``@ / + =``,
    common in generated secrets)."""
    json_ascii = json.dumps(value)[1:-1]
    json_utf8 = json.dumps(value, ensure_ascii=False)[1:-1]
    spelled = {
        value,
        repr(value)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
        quote(value),  # the default: "/" kept
        html.escape(value),
        html.escape(value, quote=False),
    }
    for text in (json_ascii, json_utf8):
        spelled.update((text, text.replace("/", "\\/"), _go_escaped(text)))
    return spelled


def _go_escaped(json_text: str) -> str:
    """JSON as Go's encoder writes it: ``&``, ``<`` and ``>`` as ``\\u`` escapes."""
    return json_text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _credentials_in(value: object, path: str, found: dict[str, str], credential: bool) -> None:
    """The credentials in ``value`` (a table, a list, a scalar) by key path: all of it when
    ``credential`` (it is under a key that names one), else what is held in a ``Secret`` and
    the passwords of URLs."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            named = credential or bool(CREDENTIAL_KEY.search(str(key).lower()))
            _credentials_in(item, f"{path}.{key}", found, named)
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            _credentials_in(item, f"{path}[{i}]", found, credential)
    elif isinstance(value, Secret):
        found.setdefault(value.reveal(), path)
    elif credential and isinstance(value, str | int) and not isinstance(value, bool):
        found.setdefault(str(value), path)
    elif isinstance(value, str) and "@" in value:
        password = _url_password(value)
        if password:
            found.setdefault(password, f"{path} (its password)")
            found.setdefault(unquote(password), f"{path} (its password)")


def _url_password(value: str) -> str | None:
    try:
        return urlsplit(value).password
    except ValueError:  # not a URL after all (a bad port, say)
        return None
