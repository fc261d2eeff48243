"""``router``: sends each message where the ``[[routes]]`` table says (always enabled, last)."""

from __future__ import annotations

from collections.abc import Sequence

from mixpanel_core import Message, hookimpl
from mixpanel_core.config import RouteConfig
from mixpanel_core.plugin import PluginContext


class ConfigRouter:
    """The first ``[[routes]]`` entry whose ``kinds`` and ``endpoints`` match wins.

    Without routes, this plugin answers ``None`` and the pipeline's default applies: the only
    transport, or the one named ``default``. It is ``trylast`` so any router of yours wins.
    """

    def __init__(self, routes: Sequence[RouteConfig]) -> None:
        self.routes = tuple(routes)
        self._cache: dict[tuple[str, str], tuple[str, ...] | None] = {}

    @classmethod
    def from_config(cls, context: PluginContext) -> ConfigRouter | NoRoutes:
        # The table itself, even empty: [plugins.router] reads as if it configured routing.
        if context.options or context.name in context.config.plugin_options:
            from mixpanel_core.errors import ConfigError

            raise ConfigError(
                f"{context.path}: the router takes no options, so a [{context.path}] table is "
                "an error, even an empty one; routes live in [[routes]]: remove the table"
            )
        # Without routes there is nothing to decide: registering no hook saves every message
        # a call that would answer None.
        return cls(context.config.routes) if context.config.routes else NoRoutes()

    @hookimpl(trylast=True)
    def mixpanel_route(self, message: Message, transports: Sequence[str]) -> Sequence[str] | None:
        key = (message.kind, message.endpoint)
        try:
            return self._cache[key]
        except KeyError:
            pass
        # Routes depend only on kind and endpoint, so each pair is decided once.
        chosen = next((r.transports for r in self.routes if r.matches(*key)), None)
        if chosen is None:
            from mixpanel_core.errors import ConfigError

            raise ConfigError(
                f"routes: no route takes {message.kind} messages (endpoint {message.endpoint}); "
                "add a catch-all [[routes]] entry without kinds"
            )
        self._cache[key] = chosen
        return chosen


class NoRoutes:
    """The router when ``[[routes]]`` is empty: the pipeline's default route applies."""
