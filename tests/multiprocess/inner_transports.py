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
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from mixpanel_core.consumer_adapter import ConsumerTransport
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import DeliveryError, TransportError
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


OWN_REASON = "reported by the transport itself"
"""The reason of the reports ``reports_first`` makes."""


@attrs.frozen
class RaisingOptions:
    path: str = setting(doc="Where to append each message it delivers, one JSON line each.")
    hold: bool = setting(False, doc="Keep messages unreported until flush or close.")
    flush: str = setting("ok", doc="'raise': flush raises RuntimeError.")
    close: str = setting(
        "ok",
        doc="'raise': close raises RuntimeError (before it delivers); 'interrupt' or 'exit': "
        "close delivers what it holds, then raises KeyboardInterrupt or SystemExit.",
    )
    reports_first: str = setting(
        "",
        doc="'failed' or 'accepted': an UNLUCKY message is reported so by the transport itself "
        "(on the calling thread) before it raises, as mixpanel-core's ConsumerTransport does.",
    )
    report_twice: bool = setting(False, doc="Report each message it delivers twice.")
    raises: str = setting(
        "oserror",
        doc="What send raises on an UNLUCKY message: 'oserror' (a full disk), 'delivery' "
        "(mixpanel-core's DeliveryError, which says the message was refused for good) or "
        "'transport' (a TransportError: it cannot take the message, as the contract says).",
    )
    quote_secrets: bool = setting(
        False, doc="What it raises quotes [mixpanel] api_secret and the password key."
    )
    password: str = setting("", doc="A credential of its own (quoted by quote_secrets).")


class RaisingTransport:
    """Writes each message to a file and reports it ACCEPTED; ``send`` raises ``OSError`` on
    events named ``UNLUCKY``."""

    @classmethod
    def from_config(cls, options: Mapping[str, Any], context: TransportContext) -> Any:
        return cls(read(RaisingOptions, options, context.path), context)

    def __init__(self, options: RaisingOptions, context: TransportContext) -> None:
        self._options = options
        self._name = context.name
        self._report = context.report
        self._held: list[Message] = []
        secret = context.settings.api_secret
        # As an HTTP library's error quoting the request's credentials would.
        self._quoted = (
            f" (api_secret={secret.reveal() if secret else None}, password={options.password})"
            if options.quote_secrets
            else ""
        )

    def send(self, message: Message) -> None:
        if isinstance(message, Event) and message.name == DOOMED:
            raise Doom("the sender's drain must not survive this")
        if isinstance(message, Event) and message.name == UNLUCKY:
            self._report_first([message])
            raise self._disk_full()
        if self._options.hold:
            self._held.append(message)
        else:
            self._deliver([message])

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        if self._options.flush == "raise":
            raise RuntimeError(f"flush exploded{self._quoted}")
        held, self._held = self._held, []
        self._deliver(held)
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        if self._options.close == "raise":
            raise RuntimeError(f"close exploded{self._quoted}")
        held, self._held = self._held, []
        self._deliver(held)
        if self._options.close == "interrupt":
            raise KeyboardInterrupt
        if self._options.close == "exit":
            raise SystemExit(3)
        return ()

    def _disk_full(self) -> Exception:
        if self._options.raises == "delivery":
            return DeliveryError(f"Mixpanel refused it{self._quoted}")
        if self._options.raises == "transport":
            return TransportError(f"the archive refused it{self._quoted}")
        if not self._quoted:
            return DISK_FULL
        return OSError(errno.ENOSPC, f"No space left on device{self._quoted}")

    def _report_first(self, messages: Sequence[Message]) -> None:
        if self._options.reports_first:
            status = DeliveryStatus(self._options.reports_first)
            for message in messages:
                self._report(DeliveryReport(message, status, self._name, OWN_REASON))

    def _deliver(self, messages: list[Message]) -> None:
        with Path(self._options.path).open("ab") as out:
            out.writelines(message.json() + b"\n" for message in messages)
        for message in messages:
            for _ in range(2 if self._options.report_twice else 1):
                self._report(DeliveryReport(message, DeliveryStatus.ACCEPTED, self._name))


class RaisingSink(RaisingTransport):
    """A ``RecordSink``: ``send_records`` raises ``OSError`` on a run holding an ``UNLUCKY``
    event, having taken none of it (as the RecordSink contract says); with ``reports_first``,
    having reported the ``UNLUCKY`` ones (rebuilt from their records) first."""

    def send_records(self, endpoint: str, records: Sequence[bytes]) -> None:
        messages = [message_from_json(endpoint, record) for record in records]
        unlucky = [m for m in messages if isinstance(m, Event) and m.name == UNLUCKY]
        if unlucky:
            self._report_first(unlucky)
            raise self._disk_full()
        self._deliver(messages)


class FlakyConsumer:
    """An official-style consumer (``send(endpoint, json_message)``) of the user's: it writes
    each message's JSON to a file, and raises ``ConnectionError`` on events named
    ``UNLUCKY``."""

    def __init__(self, path: str) -> None:
        self._path = path

    def send(self, endpoint: str, json_message: str) -> None:
        if json.loads(json_message).get("event") == UNLUCKY:
            raise ConnectionError("the consumer lost its connection")
        with Path(self._path).open("a") as out:
            out.write(json_message + "\n")


class ConsumerBacked:
    """The transport type ``consumer``: mixpanel-core's own ``ConsumerTransport`` around a
    ``FlakyConsumer`` (it reports a message whose ``send`` raised FAILED, then raises it
    again)."""

    @classmethod
    def from_config(cls, options: Mapping[str, Any], context: TransportContext) -> Any:
        return ConsumerTransport(FlakyConsumer(options["path"]), context.name, context.report)


def install(directory: Path) -> Path:
    """Install the transport types ``raising``, ``raising_sink`` and ``consumer`` into
    ``directory`` (then to put on ``sys.path``); returns ``directory``."""
    targets = {
        "raising": "acme_inner:RaisingTransport",
        "raising_sink": "acme_inner:RaisingSink",
        "consumer": "acme_inner:ConsumerBacked",
    }
    source = Path(__file__).read_text()
    return install_distribution(
        directory, "acme-inner", {"mixpanel_core.transports": targets}, {"acme_inner": source}
    )
