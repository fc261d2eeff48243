"""``super_properties``: properties added to every event, from config and at run time."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from mixpanel_core import Message, hookimpl
from mixpanel_core.frozen import FrozenDict, freeze
from mixpanel_core.messages import Event
from mixpanel_core.plugin import PluginContext
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.schema import read, setting


@attrs.frozen
class SuperPropertiesOptions:
    """The ``[plugins.super_properties]`` table."""

    properties: Mapping[str, Any] = setting(
        factory=dict, doc="Properties added to every event (`track`, `import_data`)."
    )


_EVENT_KINDS = frozenset({"event", "import"})


class SuperProperties:
    """Adds the registered properties to events that do not set them already.

    A property the caller passes wins over a super property of the same name. ``register``
    and ``unregister`` change the set at run time, safely from any thread.
    """

    def __init__(self, properties: Mapping[str, Any] | None = None) -> None:
        self._properties: FrozenDict = freeze(properties or {}, "super_properties")
        self._lock = threading.Lock()
        in_fork_children(self, SuperProperties._new_lock)

    def _new_lock(self) -> None:
        # A child forked while another thread of the parent's was in register() inherits the
        # lock held, by a thread it does not have: its own register() would wait forever.
        # Nothing that holds the lock forks, so the child's one thread never holds it.
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, context: PluginContext) -> SuperProperties:
        options = read(SuperPropertiesOptions, context.options, context.path)
        return cls(options.properties)

    @property
    def properties(self) -> FrozenDict:
        return self._properties

    def register(self, properties: Mapping[str, Any]) -> None:
        """Add or replace super properties."""
        frozen = freeze(properties, "super_properties")
        with self._lock:
            self._properties = self._properties.merged(frozen)

    def unregister(self, names: Iterable[str] | str) -> None:
        """Remove super properties by name."""
        with self._lock:
            self._properties = self._properties.without(
                [names] if isinstance(names, str) else names
            )

    @hookimpl
    def mixpanel_enrich(self, message: Message) -> Message | None:
        supers = self._properties
        if not supers or message.kind not in _EVENT_KINDS or not isinstance(message, Event):
            return None
        props = message.record["properties"]
        if props.keys() >= supers.keys():
            return None
        # The caller's values win: super properties go first, then the event's own on top.
        # Both are frozen (the supers by register, the properties as the message's own), so
        # they are copied as they are: merged() would check each value again, a microsecond
        # per event.
        combined = FrozenDict(supers)
        dict.update(combined, props)  # the base method: this copy is not shared yet
        return message.with_property_values(combined)
