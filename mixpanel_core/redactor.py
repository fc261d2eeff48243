"""``Redactor``: replaces the credentials a third party's exception may quote by key paths.

What a plugin or transport of someone else's raised goes into our errors, reports and logs
(a ``from_config`` that failed, an inner transport of ``multiprocessing_queue`` that raised).
That text may quote a credential (an HTTP library's error quoting the request), and no error
of ours may hold one (docs/errors.md). The code was given the ``[mixpanel]`` settings, whose
``Secret`` values it may reveal, and its own table, which is raw (a password in it is a plain
string: only ``read`` makes it a ``Secret``), so each of those values is replaced by its key
path: the text still says which value it was, and holds none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

MIN_TABLE_VALUE = 4
"""Table values shorter than this are left: most are no secret (``true``, a batch size), and
replacing each ``50`` or ``abc`` in the text would garble it."""


class Redactor:
    """Replaces, in a text, every ``Secret`` value of ``[mixpanel]`` and every value of one
    transport's table of ``MIN_TABLE_VALUE`` characters or more, by its key path.

    A ``Secret`` value is replaced wherever it appears (a credential glued to other text is
    still one); a table value only as a whole word, since a table also holds plain words
    (``close = "raise"``) that are no secret and would garble the text where they are part of
    a longer one (``raised``). Meant for an exception's text (and traceback), not for text of
    ours around it, which such a word may be part of.
    """

    def __init__(self, settings: MixpanelSettings, table: Mapping[str, object], path: str) -> None:
        """``table``: the plugin's or transport's own table, whose key path is ``path``."""
        values: dict[str, str] = {}
        for field in attrs.fields(MixpanelSettings):
            value = getattr(settings, field.name)
            if isinstance(value, Secret) and value.reveal():
                values.setdefault(value.reveal(), f"mixpanel.{field.name}")
        secrets = set(values)
        found: dict[str, str] = {}
        _values_of(table, path, found)
        for value, where in found.items():
            if len(value) >= MIN_TABLE_VALUE:
                values.setdefault(value, where)
        self._paths = values
        # One pass, the longest first: a value that holds another is replaced whole, and a key
        # path put in is not searched again. Built once: the values never change.
        quoted = sorted(values, key=len, reverse=True)
        pieces = [re.escape(v) if v in secrets else _whole_word(v) for v in quoted]
        self._pattern = re.compile("|".join(pieces)) if pieces else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: f"<{self._paths[match.group(0)]}>", text)


def _whole_word(value: str) -> str:
    """A pattern for ``value`` not preceded or followed by a word character where its own
    first or last character is one (``raise`` in ``raise it``, not in ``raised``)."""
    before = r"(?<!\w)" if re.match(r"\w", value[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", value[-1]) else ""
    return before + re.escape(value) + after


def _values_of(value: object, path: str, found: dict[str, str]) -> None:
    """Each string or integer in ``value`` (a table, a list, a scalar), as text, by key path."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _values_of(item, f"{path}.{key}", found)
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            _values_of(item, f"{path}[{i}]", found)
    elif isinstance(value, Secret):
        found.setdefault(value.reveal(), path)
    elif isinstance(value, str | int) and not isinstance(value, bool):
        found.setdefault(str(value), path)
