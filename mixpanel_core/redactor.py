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
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

import attrs

from mixpanel_core.chains import walked
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

if TYPE_CHECKING:
    from mixpanel_core.config import Config

CALL_SECRET = "the api_secret given with the call"
"""What a call's own API secret (``import_data(..., api_secret=...)``) is replaced by."""

WITHHELD = "<withheld: it spells a credential of the request>"
"""What replaces a text of an answer that still spells a credential once redacted: in an
escape the redactor does not know, or cut or mangled (``Redactor.guarded``)."""

_WINDOW = 10
"""A credential shows in a text if any run of this many of its characters does (the whole of a
shorter one): a page cut, or decoded with one letter lost, still gives most of it away."""

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
        # A blank value gives nothing away (and is refused where it is set): taken for one,
        # every run of spaces in a text would be "redacted".
        found = {value: where for value, where in found.items() if value.strip()}
        paths: dict[str, str] = {}
        for value, where in found.items():
            for spelling in _spellings(value):
                paths.setdefault(spelling, where)
        self._found = dict(found)
        self._paths = paths
        self._labels = {f"<{where}>" for where in found.values()}
        # One pass, the longest first: a value that holds another is replaced whole. A label
        # already in the text (one redacted before) is matched first and kept as it is, so
        # that a short secret inside it ("secret" in <mixpanel.api_secret>) is not replaced.
        labels = [re.escape(label) for label in sorted(self._labels, key=len, reverse=True)]
        pieces = [re.escape(value) for value in sorted(paths, key=len, reverse=True)]
        self._pattern = re.compile("|".join(labels + pieces)) if pieces else None
        self._label_pattern = re.compile("|".join(labels)) if labels else None
        windows = {w for value in found for w in _windows(value)}
        ordered = sorted(windows, key=len, reverse=True)
        self._window_pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

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
        value = secret.reveal()
        return self.with_credentials(
            {value: CALL_SECRET, _basic(value, ""): f"{CALL_SECRET} (Basic)"}
        )

    def with_credentials(self, found: Mapping[str, str]) -> Redactor:
        """This redactor, and the credentials ``found`` (each value: where it comes from)."""
        if not found:
            return self
        more = dict(self._found)
        for value, where in found.items():
            more.setdefault(value, where)
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
        return self._pattern.sub(self._label, text)

    def _label(self, match: re.Match[str]) -> str:
        found = match.group(0)
        return found if found in self._labels else f"<{self._paths[found]}>"

    def spells_one(self, text: str | bytes) -> bool:
        """Whether ``text`` (redacted, or raw bytes of any encoding) gives away a credential
        in a way ``__call__`` does not replace: in an escape of a writer it does not know
        (HTML's numeric entities, upper-case ``\\u00E9``, lower-case ``%2f``), or in part
        (``_WINDOW`` characters of it). What an answer says is decoded every way a server may
        have written it, twice over, and looked through."""
        if self._window_pattern is None:
            return False
        if isinstance(text, bytes):
            # Latin-1 too: a page in it keeps a non-ASCII secret's letters, which UTF-8
            # would make replacement characters. UTF-16 and UTF-32 (NULs between ASCII
            # letters, which a terminal does not show), each either way round and from
            # any byte, for other letters.
            texts = [text.decode("utf-8", "replace"), text.decode("latin-1")]
            texts.append(text.replace(b"\0", b"").decode("latin-1"))  # ASCII in UTF-16, -32
            texts += [
                text[start:].decode(codec, "replace")
                for codec, starts in (
                    ("utf-16-le", (0, 1)),
                    ("utf-16-be", (0, 1)),
                    ("utf-32-le", (0, 1, 2, 3)),
                    ("utf-32-be", (0, 1, 2, 3)),
                )
                for start in starts
            ]
        else:
            texts = [text]
        if self._label_pattern is not None:
            texts = [self._label_pattern.sub(" ", each) for each in texts]
        pattern = self._window_pattern
        return any(pattern.search(form) for each in texts for form in _decoded_forms(each))

    def guarded(self, text: str) -> str:
        """``text`` redacted, or ``WITHHELD`` whole if it still spells a credential."""
        redacted = self(text)
        return WITHHELD if self.spells_one(redacted) else redacted


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
    printed = _printed_but_places(traceback.TracebackException.from_exception(error))
    if redact(printed) == printed:
        return said, error
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (raised at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return said + where, None


def _printed_but_places(error: traceback.TracebackException) -> str:
    """What a traceback of ``error`` prints but where its frames are (file, line number and
    function, which hold no credential: a short secret such as ``5`` stood in some line
    number of almost every traceback, and each error quoting it lost its cause): the text,
    notes and source lines of ``error`` and of what it chains or groups. Walked with a list,
    not by recursion: a chain may be longer than the interpreter's recursion limit."""
    parts: list[str] = []
    for each in walked(error, _linked):
        parts += [frame.line or "" for frame in each.stack]
        parts += each.format_exception_only()
    return "\n".join(parts)


def _linked(error: traceback.TracebackException) -> list[traceback.TracebackException | None]:
    return [error.__cause__, error.__context__, *(error.exceptions or ())]


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


def _windows(value: str) -> set[str]:
    """The runs of ``_WINDOW`` characters of ``value`` (``value`` itself if shorter)."""
    if len(value) <= _WINDOW:
        return {value}
    return {value[i : i + _WINDOW] for i in range(len(value) - _WINDOW + 1)}


_JSON_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{2}|[\\/\"bfnrt'])")
_JSON_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _json_unescaped(text: str) -> str:
    """``text`` with JSON's and JavaScript's escapes undone, in either case of hex (``\\/``,
    ``\\u00E9``, ``\\x2B``, ``\\'``); a surrogate pair's halves stay two characters, as no secret
    is matched across one."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "ux":
            return chr(int(code[1:], 16))
        return _JSON_SIMPLE.get(code, code)

    return _JSON_ESCAPE.sub(one, text)


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def _base64_decoded(text: str) -> str:
    """What each run of base64 in ``text`` decodes to (a page may echo a whole header so)."""
    decoded = []
    for run in _BASE64_RUN.findall(text):
        try:
            data = base64.b64decode(run + "=" * (-len(run) % 4))
        except ValueError:
            continue
        decoded.append(data.decode("utf-8", "replace"))
    return " ".join(decoded)


_DECODERS: tuple[Callable[[str], str], ...] = (
    _base64_decoded,
    html.unescape,
    unquote,
    unquote_plus,
    _json_unescaped,
)


def _decoded_forms(text: str) -> set[str]:
    """``text`` and what it reads as once or twice decoded by each of ``_DECODERS`` (a page
    may HTML-escape JSON it quotes, or quote a percent-encoded URL in JSON)."""
    forms = {text}
    for _ in range(2):
        forms |= {decode(form) for form in forms for decode in _DECODERS}
    return forms


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
