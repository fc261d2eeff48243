"""``buffered_http``: ``send`` only enqueues; a background thread delivers in batches."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mixpanel_core.buffered_http_options import BufferedHttpOptions
from mixpanel_core.buffering import BackgroundSender
from mixpanel_core.delivery import Reporter
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.messages import Endpoint, Message
from mixpanel_core.schema import read
from mixpanel_core.settings import MixpanelSettings
from mixpanel_core.transport import TransportContext, ignore_report

__all__ = ["BufferedHttpOptions", "BufferedHttpTransport"]


class BufferedHttpTransport:
    """Queues messages (bounded, with a full policy) and sends them in batches from a thread.

    The whole behaviour (batching per endpoint, linger, drops, flush at exit, fork safety,
    dead letters, delivering then ending the thread when dropped without ``close``) is
    ``mixpanel_core.buffering.BackgroundSender``; this class gives it the transport
    interface. See docs/transports/buffered_http.md.

    ``send`` is the sender's ``submit`` itself, bound on each instance rather than a method
    that calls it: to change what ``send`` does, wrap this transport rather than subclass it.
    """

    def __init__(
        self,
        settings: MixpanelSettings | None = None,
        options: BufferedHttpOptions | None = None,
        *,
        name: str = "buffered_http",
        report: Reporter = ignore_report,
        observed: bool | None = None,
    ) -> None:
        options = options or BufferedHttpOptions()
        client = IngestionClient(settings or MixpanelSettings(), options.http(), name=name)
        self.sender = BackgroundSender(
            client,
            options.buffer(),
            name=name,
            report=report,
            observed=observed,
            exit_owner=self,
        )
        # ``send`` is the sender's own ``submit``: one call less for every tracked event.
        self.send: Callable[[Message], None] = self.sender.submit

    @classmethod
    def from_config(
        cls, options: Mapping[str, Any], context: TransportContext
    ) -> BufferedHttpTransport:
        opts = read(BufferedHttpOptions, options, context.path)
        return cls(
            context.settings,
            opts,
            name=context.name,
            report=context.report,
            observed=context.observed,
        )

    @property
    def pending(self) -> int:
        """Messages queued or being sent (what ``flush`` still waits for, at most)."""
        return len(self.sender)

    @property
    def dropped(self) -> int:
        """Messages dropped by the full policy so far."""
        return self.sender.dropped

    @property
    def dead_letters_unwritten(self) -> int:
        """Records that failed and that ``dead_letter_path`` could not take, in this process."""
        return self.sender.dead_letters_unwritten

    def send_records(self, endpoint: Endpoint, records: Sequence[bytes]) -> None:
        """Queue records already validated and encoded (see ``RecordSink``)."""
        self.sender.submit_records(endpoint, records)

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        return self.sender.flush(timeout)

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        return self.sender.close(timeout)
