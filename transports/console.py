"""``console``: prints each wire record as a JSON line (for demos and debugging)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import attrs

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.messages import Message
from mixpanel_core.schema import read, setting
from mixpanel_core.transport import TransportContext, bounded, ignore_report
from mixpanel_core.wire import dumps_str


@attrs.frozen
class ConsoleOptions:
    """The options of a ``type = "console"`` transport."""

    stream: str = setting("stdout", doc="`stdout` or `stderr`.")
    show_endpoint: bool = setting(True, doc="Prefix each line with the endpoint, `track: {...}`.")


class ConsoleTransport:
    """Writes ``endpoint: {record}`` (or just the record) per message; reports it accepted."""

    def __init__(
        self,
        stream: TextIO | None = None,
        show_endpoint: bool = True,
        name: str = "console",
        report: Reporter = ignore_report,
    ) -> None:
        self._stream = stream
        self._show_endpoint = show_endpoint
        self._name = name
        self._report = report

    @classmethod
    def from_config(cls, options: Mapping[str, Any], context: TransportContext) -> ConsoleTransport:
        opts = read(ConsoleOptions, options, context.path)
        if opts.stream not in ("stdout", "stderr"):
            from mixpanel_core.errors import ConfigError

            raise ConfigError(f"{context.path}.stream: must be 'stdout' or 'stderr'")
        stream = sys.stderr if opts.stream == "stderr" else None
        return cls(stream, opts.show_endpoint, context.name, context.report)

    def send(self, message: Message) -> None:
        line = dumps_str(message.record)
        if self._show_endpoint:
            line = f"{message.endpoint}: {line}"
        print(line, file=self._stream or sys.stdout, flush=True)
        self._report(DeliveryReport(message, DeliveryStatus.ACCEPTED, self._name))

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        bounded(timeout, 0.0)  # the contract's rule, as for the transports that wait
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        bounded(timeout, 0.0)
        return ()
