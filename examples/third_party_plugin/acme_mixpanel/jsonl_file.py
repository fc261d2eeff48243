"""``jsonl_file``: appends every message to a JSON-lines file (an archive, or a spool)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from mixpanel_core import ConfigError, DeliveryReport, DeliveryStatus, Message, TransportContext
from mixpanel_core.schema import read, setting
from mixpanel_core.wire import dumps


@attrs.frozen
class JsonLinesFileOptions:
    """The options of a ``type = "jsonl_file"`` transport."""

    path: str = setting(doc="The file to append to; created if missing, with its directory.")
    with_endpoint: bool = setting(True, doc="Write `{endpoint, record}` rather than the record.")


def _opened(path: str, key: str) -> BinaryIO:
    """``path`` opened to append, its directory made if missing; a ``ConfigError`` naming
    ``key`` if that cannot be done (a path no one can write to is a configuration mistake)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, "ab")  # closed by the transport's close()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot append to {path}: {exc.strerror}") from exc


class JsonLinesFileTransport:
    """One line per message, flushed on ``flush``/``close``; safe from many threads."""

    def __init__(self, options: JsonLinesFileOptions, context: TransportContext) -> None:
        self._options = options
        self._context = context
        self._file = _opened(options.path, f"{context.path}.path")
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls, options: Mapping[str, Any], context: TransportContext
    ) -> JsonLinesFileTransport:
        return cls(read(JsonLinesFileOptions, options, context.path), context)

    def send(self, message: Message) -> None:
        if self._options.with_endpoint:
            line = dumps({"endpoint": message.endpoint, "record": message.record})
        else:
            line = dumps(message.record)
        with self._lock:
            self._file.write(line + b"\n")
        self._context.report(DeliveryReport(message, DeliveryStatus.ACCEPTED, self._context.name))

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        with self._lock:
            self._file.flush()
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        with self._lock:
            if not self._file.closed:
                self._file.close()
        return ()
