"""``tenant``: stamps each event (`track()`, `import_data()`) with the tenant it came from."""

from __future__ import annotations

import attrs

from mixpanel_core import Event, Message, hookimpl
from mixpanel_core.plugin import PluginContext
from mixpanel_core.schema import read, setting


@attrs.frozen
class TenantOptions:
    """The ``[plugins.tenant]`` table."""

    tenant: str = setting(doc="The tenant id added to every event as `tenant`.")
    property: str = setting("tenant", doc="The property name to use.")


class Tenant:
    """Adds ``{property: tenant}`` to every event unless the caller set it."""

    def __init__(self, options: TenantOptions) -> None:
        self.options = options

    @classmethod
    def from_config(cls, context: PluginContext) -> Tenant:
        return cls(read(TenantOptions, context.options, context.path))

    @hookimpl
    def mixpanel_enrich(self, message: Message) -> Message | None:
        # Events of track() and import_data() only, not $create_alias or $merge (Event too).
        if message.kind not in ("event", "import") or not isinstance(message, Event):
            return None
        if self.options.property in message.properties:
            return None
        return message.with_properties({self.options.property: self.options.tenant})
