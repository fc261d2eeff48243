"""``--fix PLUGIN``: run one plugin's validate and enrich hooks on a message before the pipeline.

A fix-up plugin is an ordinary enrichment plugin (``mixpanel_enrich`` returns a corrected copy;
``mixpanel_validate`` may refuse what it cannot correct). It runs *before* the configured
pipeline because the pipeline validates before it enriches: a record that a check refuses
(``mixpanel_limits`` on a bad ``time``) must be corrected before that check sees it.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from mixpanel_core.config import Config
from mixpanel_core.errors import TransportError
from mixpanel_core.messages import Message
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.plugin import PluginContext, instantiate
from mixpanel_core.registry import PLUGIN_GROUP, load


class _Capture:
    """A transport that keeps the one message the fix-up pipeline just finished."""

    def __init__(self) -> None:
        self.message: Message | None = None

    def send(self, message: Message) -> None:
        self.message = message

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        return ()


class FixUp:
    """The plugin ``name``, built with its ``[plugins.NAME]`` options from ``config``."""

    def __init__(self, config: Config, name: str) -> None:
        self.name = name
        target = load(PLUGIN_GROUP, name, "--fix")
        context = PluginContext(name, config.plugin_options.get(name, {}), config)
        self._capture = _Capture()
        # A pipeline of this one plugin: the same hook calls, errors and immutability rules
        # as the real one; its default on_invalid ("raise") hands refusals back to us.
        self._pipeline = Pipeline([(name, instantiate(target, context))], {"fix": self._capture})

    def apply(self, message: Message) -> Message:
        """The corrected message; raises ``ValidationError`` when the plugin refuses it."""
        self._capture.message = None
        self._pipeline.submit(message)
        fixed = self._capture.message
        if fixed is None:
            raise TransportError(f"--fix {self.name}: the fix-up pipeline kept no message")
        return fixed


def without_plugin(config: Config, name: str) -> Config:
    """``config`` without ``name`` among its enabled plugins: the fix-up ran it already."""
    return attrs.evolve(config, plugins=tuple(p for p in config.plugins if p != name))
