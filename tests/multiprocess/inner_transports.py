"""Third-party inner transports for the ``multiprocessing_queue`` sender that raise what a
production bug raises (``OSError`` from a full disk, ``RuntimeError``), not mixpanel-core's
errors.

``install`` installs a copy of this module as the distribution ``acme-inner`` (module
``acme_inner``), whose entry points name the transport types: the spawned sender finds and
imports it as it would a package pip installed. A copy, under a name of its own: the registry
refuses an entry point whose module is shadowed by another of that name earlier on
``sys.path``, and this directory is on it (see conftest).
"""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.messages import Event, Message, message_from_json
from mixpanel_core.schema import read, setting
from mixpanel_core.testing import install_distribution
from mixpanel_core.transport import TransportContext

UNLUCKY = "Unlucky"
"""The event name whose messages ``send`` raises ``OSError`` on."""

DOOMED = "Doomed"
"""The event name whose messages ``send`` raises ``Doom`` on: not an ``Exception``, so it ends
the sender's drain as a bug in the sender itself would."""

DISK_FULL = OSError(errno.ENOSPC, "No space left on device")


class Doom(BaseException):
    """What no per-message handling may catch."""


@attrs.frozen
class RaisingOptions:
    path: str = setting(doc="Where to append each message it delivers, one JSON line each.")
    hold: bool = setting(False, doc="Keep messages unreported until flush or close.")
    flush: str = setting("ok", doc="'raise': flush raises RuntimeError.")
    close: str = setting("ok", doc="'raise': close raises RuntimeError (before it delivers).")


class RaisingTransport:
    """Writes each message to a file and reports it ACCEPTED; ``send`` raises ``OSError`` on
    events named ``UNLUCKY``."""

    @classmethod
    def from_config(cls, options: Mapping[str, Any], context: TransportContext) -> Any:
        return cls(read(RaisingOptions, options, context.path), context.name, context.report)

    def __init__(self, options: RaisingOptions, name: str, report: Reporter) -> None:
        self._options = options
        self._name = name
        self._report = report
        self._held: list[Message] = []

    def send(self, message: Message) -> None:
        if isinstance(message, Event) and message.name == DOOMED:
            raise Doom("the sender's drain must not survive this")
        if isinstance(message, Event) and message.name == UNLUCKY:
            raise DISK_FULL
        if self._options.hold:
            self._held.append(message)
        else:
            self._deliver([message])

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        if self._options.flush == "raise":
            raise RuntimeError("flush exploded")
        held, self._held = self._held, []
        self._deliver(held)
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        if self._options.close == "raise":
            raise RuntimeError("close exploded")
        held, self._held = self._held, []
        self._deliver(held)
        return ()

    def _deliver(self, messages: list[Message]) -> None:
        with Path(self._options.path).open("ab") as out:
            out.writelines(message.json() + b"\n" for message in messages)
        for message in messages:
            self._report(DeliveryReport(message, DeliveryStatus.ACCEPTED, self._name))


class RaisingSink(RaisingTransport):
    """A ``RecordSink``: ``send_records`` raises ``OSError`` on a run holding an ``UNLUCKY``
    event, having taken none of it (as the RecordSink contract says)."""

    def send_records(self, endpoint: str, records: Sequence[bytes]) -> None:
        messages = [message_from_json(endpoint, record) for record in records]
        if any(isinstance(m, Event) and m.name == UNLUCKY for m in messages):
            raise DISK_FULL
        self._deliver(messages)


def install(directory: Path) -> Path:
    """Install the transport types ``raising`` and ``raising_sink`` into ``directory`` (then to
    put on ``sys.path``); returns ``directory``."""
    targets = {"raising": "acme_inner:RaisingTransport", "raising_sink": "acme_inner:RaisingSink"}
    source = Path(__file__).read_text()
    return install_distribution(
        directory, "acme-inner", {"mixpanel_core.transports": targets}, {"acme_inner": source}
    )
