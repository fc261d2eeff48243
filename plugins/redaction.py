"""``redaction``: drops or hashes configured property names before anything leaves the process."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import attrs

from mixpanel_core import Event, Message, hookimpl
from mixpanel_core.api_limits import PROFILE_OPERATIONS
from mixpanel_core.errors import ConfigError
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.messages import Alias, GroupUpdate, Merge
from mixpanel_core.plugin import PluginContext
from mixpanel_core.schema import read, setting
from mixpanel_core.secrets import Secret


@attrs.frozen
class RedactionOptions:
    """The ``[plugins.redaction]`` table."""

    drop: tuple[str, ...] = setting((), doc="Property names removed from every message.")
    hash: tuple[str, ...] = setting(
        (), doc="Property names whose values are replaced by a keyed SHA-256 hex digest."
    )
    salt: Secret | None = setting(
        None,
        doc="The HMAC key for `hash`; required when `hash` is set, and never empty or blank. "
        "Use `${VAR}`.",
    )

    @salt.validator
    def _not_blank(self, attribute: attrs.Attribute[object], value: Secret | None) -> None:
        # A ${VAR} set to "" or to spaces in a deployment would key every digest with
        # nothing: anyone could recompute them from a list of e-mail addresses.
        if value is not None and not value.reveal().strip():
            raise ValueError(f"{attribute.name}: must not be empty or blank")


IDENTITY = "distinct_id"
"""Hashed in ``hash``, the user's identity is hashed wherever a message carries it: an event's
``distinct_id``, a profile update's ``$distinct_id``, an alias's ``alias`` and a merge's
``$distinct_ids``. Otherwise a profile and its user's events would no longer meet."""


_NONE: frozenset[str] = frozenset()
_IDS_OF = {Alias.kind: frozenset({"alias"}), Merge.kind: frozenset({"$distinct_ids"})}
"""The properties besides ``distinct_id`` that carry a user's identity, by message kind."""


class Redaction:
    """Applies to event properties and to the objects of profile operations (``$set`` ...),
    and to the user's identity in every message when ``distinct_id`` is hashed (``IDENTITY``).

    Hashing is HMAC-SHA-256 with the configured salt, so the same value always maps to the
    same digest (segmentation still works) but cannot be looked up in a rainbow table. A list
    is hashed element by element (a ``$union`` stays a list).
    """

    def __init__(
        self, drop: tuple[str, ...] = (), hash: tuple[str, ...] = (), salt: str = ""
    ) -> None:
        self.drop = frozenset(drop)
        self.hash = frozenset(hash)
        # A keyed HMAC prepared once; copies of it digest values, and its repr shows no key.
        self._hmac = hmac.new(salt.encode(), digestmod=hashlib.sha256)
        self._names = self.drop | self.hash
        self._identity = IDENTITY in self.hash

    @classmethod
    def from_config(cls, context: PluginContext) -> Redaction:
        options = read(RedactionOptions, context.options, context.path)
        if options.hash and not options.salt:
            raise ConfigError(f"{context.path}.salt: required when hash is set")
        both = sorted(set(options.drop) & set(options.hash))
        if both:
            # Either would be a guess at what was meant (dropped wins, but a hash the user
            # counts on would then be missing from every message): say so at load.
            raise ConfigError(
                f"{context.path}.hash: {', '.join(map(repr, both))} also in drop; list each "
                "property in one of them"
            )
        salt = options.salt.reveal() if options.salt else ""
        return cls(options.drop, options.hash, salt)

    def _hashed(self, value: Any) -> Any:
        if isinstance(value, tuple):  # a JSON list, frozen
            return tuple(self._digest(item) for item in value)
        return self._digest(value)

    def _digest(self, value: Any) -> Any:
        if value is None or value == "":
            # "No user" and "no value" hide nothing, and each as a digest would be one value
            # shared by all: every anonymous event one user (review R72 F2).
            return value
        text = value if isinstance(value, str) else repr(value)
        digest = self._hmac.copy()
        # surrogatepass: a lone surrogate (os.fsdecode gives them) hashes too, distinctly.
        digest.update(text.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def _redact(self, mapping: FrozenDict, ids: frozenset[str] = _NONE) -> FrozenDict | None:
        """``mapping`` without the dropped names and with the hashed ones hashed, and the names
        in ``ids`` too (an alias's ``alias``...); ``None`` when it has none of them."""
        hashed, names = (self.hash | ids, self._names | ids) if ids else (self.hash, self._names)
        if names.isdisjoint(mapping):
            return None
        return FrozenDict(
            {
                k: (self._hashed(v) if k in hashed else v)
                for k, v in mapping.items()
                if k not in self.drop
            }
        )

    # Last of the enrichers, wherever it is listed: properties that other enrichers add
    # (super properties, say) are redacted too, rather than leaving the process as they are.
    @hookimpl(trylast=True)
    def mixpanel_enrich(self, message: Message) -> Message | None:
        if isinstance(message, Event):
            ids = _IDS_OF.get(message.kind, _NONE) if self._identity else _NONE
            props = self._redact(message.properties, ids)
            return None if props is None else message.with_property_values(props)
        changes: dict[str, Any] = {}
        if self._identity and not isinstance(message, GroupUpdate):
            distinct_id = message.record.get("$distinct_id")
            if distinct_id is not None:
                changes["$distinct_id"] = self._digest(distinct_id)
        for op in PROFILE_OPERATIONS:
            value = message.record.get(op)
            if isinstance(value, FrozenDict):
                redacted = self._redact(value)
                if redacted is not None:
                    changes[op] = redacted
        return attrs.evolve(message, record=message.record.merged(changes)) if changes else None
