"""``redaction``: drops or hashes configured property names before anything leaves the process."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import attrs

from mixpanel_core import Event, Message, hookimpl
from mixpanel_core.api_limits import PROFILE_OPERATIONS
from mixpanel_core.frozen import FrozenDict
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
        None, doc="The HMAC key for `hash`; required when `hash` is set. Use `${VAR}`."
    )


class Redaction:
    """Applies to event properties and to the objects of profile operations (``$set`` ...).

    Hashing is HMAC-SHA-256 with the configured salt, so the same value always maps to the
    same digest (segmentation still works) but cannot be looked up in a rainbow table.
    """

    def __init__(
        self, drop: tuple[str, ...] = (), hash: tuple[str, ...] = (), salt: str = ""
    ) -> None:
        self.drop = frozenset(drop)
        self.hash = frozenset(hash)
        # A keyed HMAC prepared once; copies of it digest values, and its repr shows no key.
        self._hmac = hmac.new(salt.encode(), digestmod=hashlib.sha256)
        self._names = self.drop | self.hash

    @classmethod
    def from_config(cls, context: PluginContext) -> Redaction:
        options = read(RedactionOptions, context.options, context.path)
        if options.hash and not options.salt:
            from mixpanel_core.errors import ConfigError

            raise ConfigError(f"{context.path}.salt: required when hash is set")
        salt = options.salt.reveal() if options.salt else ""
        return cls(options.drop, options.hash, salt)

    def _digest(self, value: Any) -> str:
        text = value if isinstance(value, str) else repr(value)
        digest = self._hmac.copy()
        # surrogatepass: a lone surrogate (os.fsdecode gives them) hashes too, distinctly.
        digest.update(text.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def _redact(self, mapping: FrozenDict) -> FrozenDict | None:
        if self._names.isdisjoint(mapping):
            return None
        return FrozenDict(
            {
                k: (self._digest(v) if k in self.hash else v)
                for k, v in mapping.items()
                if k not in self.drop
            }
        )

    # Last of the enrichers, wherever it is listed: properties that other enrichers add
    # (super properties, say) are redacted too, rather than leaving the process as they are.
    @hookimpl(trylast=True)
    def mixpanel_enrich(self, message: Message) -> Message | None:
        if isinstance(message, Event):
            props = self._redact(message.properties)
            return None if props is None else message.with_property_values(props)
        changes = {}
        for op in PROFILE_OPERATIONS:
            value = message.record.get(op)
            if isinstance(value, FrozenDict):
                redacted = self._redact(value)
                if redacted is not None:
                    changes[op] = redacted
        return attrs.evolve(message, record=message.record.merged(changes)) if changes else None
