"""``http``: one request per message, in the caller's thread; raises when it is not accepted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mixpanel_core.delivery import DeliveryStatus, Reporter
from mixpanel_core.errors import AuthenticationError, DeliveryError
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.messages import Message
from mixpanel_core.schema import read
from mixpanel_core.settings import MixpanelSettings
from mixpanel_core.transport import TransportContext, bounded, ignore_report


class HttpTransport:
    """Sends each message at once with the ingestion client (retries included).

    ``send`` returns when Mixpanel accepted the message, and raises ``DeliveryError`` carrying
    the report when it rejected it or it failed after the retry budget
    (``AuthenticationError`` when the credentials were refused). Every outcome is reported.
    Its options are exactly ``HttpOptions`` (see docs/transports/http.md).
    """

    def __init__(
        self,
        settings: MixpanelSettings | None = None,
        options: HttpOptions | None = None,
        *,
        name: str = "http",
        report: Reporter = ignore_report,
    ) -> None:
        self.client = IngestionClient(settings or MixpanelSettings(), options, name=name)
        self._name = name
        self._report = report

    @classmethod
    def from_config(cls, options: Mapping[str, Any], context: TransportContext) -> HttpTransport:
        http_options = read(HttpOptions, options, context.path)
        return cls(context.settings, http_options, name=context.name, report=context.report)

    def send(self, message: Message) -> None:
        try:
            result = self.client.send_batch(message.endpoint, (message,))
        except AuthenticationError as error:
            for report in error.reports:
                self._report(report)
            raise
        for report in result.reports:
            self._report(report)
        if not result.ok:
            report = result.reports[0]
            verb = "rejected" if report.status is DeliveryStatus.REJECTED else "did not accept"
            raise DeliveryError(
                f"Mixpanel {verb} the {message.kind} message sent to /{message.endpoint}: "
                f"{report.reason}",
                result.reports,
            )

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        """Nothing is ever held: every ``send`` has finished before it returns."""
        bounded(timeout, 0.0)  # the contract's rule, as for the transports that wait
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        bounded(timeout, 0.0)
        self.client.close()
        return ()
