"""Official-style consumers (``send(endpoint, json_message)``) used as transports, unchanged."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from mixpanel_core import wire
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.messages import Message
from mixpanel_core.redactor import Redactor
from mixpanel_core.settings import MixpanelSettings
from mixpanel_core.transport import ignore_report

# The endpoint names the official SDK hands its consumers.
OFFICIAL_ENDPOINTS = {
    "track": "events",
    "import": "imports",
    "engage": "people",
    "groups": "groups",
}


def _positional_params(function: Any) -> int:
    if type(function).__module__ == "unittest.mock":
        # A mock takes what its spec takes, or anything. Asked, inspect.signature would probe
        # it (``send.__eq__(type)``...), and a test comparing the mock's calls would see those.
        signature = function._spec_signature
        if signature is None:
            return 99
        parameters = list(signature.parameters.values())
        if parameters and parameters[0].name == "self":
            # Specced on a class's function (``Consumer.send``): called without ``self``.
            signature = signature.replace(parameters=parameters[1:])
    else:
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return 0
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return 99
    return sum(1 for p in params if p.kind in kinds)


def is_official_consumer(candidate: object) -> bool:
    """Whether ``candidate`` looks like an official consumer: ``send`` takes two arguments."""
    send = getattr(candidate, "send", None)
    return send is not None and _positional_params(send) >= 2


class ConsumerTransport:
    """Hands each message to an official-style consumer as the official client would.

    Events go to ``"events"``, imports (and merges) to ``"imports"`` with the
    ``(api_key, api_secret)`` pair when the consumer takes it, profile updates to ``"people"``,
    group updates to ``"groups"``. What the consumer raises reaches the caller unchanged.

    Each gets the text the official client would hand it (``json_dumps``: ASCII, ``1e-07``),
    which code of the user's may compare or sign; the drop-in consumers of
    ``mixpanel_core.compat_consumers``, which only parse it (``compat_arguments``), get the
    encoding validation already made. Leaving the client flushes the consumer but never
    closes it: it is the caller's, perhaps shared with other clients, and the official client
    closes none.

    Reports: a message whose ``send`` raised is reported FAILED. One whose ``send`` returned is
    reported ACCEPTED only when the consumer has no ``flush``: a consumer with one (such as
    ``BufferedConsumer``) may only have buffered it, and what becomes of it later is known only
    from what its ``flush`` raises.
    """

    def __init__(
        self,
        consumer: Any,
        name: str = "consumer",
        report: Reporter = ignore_report,
        redactor: Redactor | None = None,
    ):
        self.consumer = consumer
        self._name = name
        self._report = report
        self._redactor = redactor or Redactor.of_settings(MixpanelSettings())
        """For what the consumer raised, in a report: it may quote a credential (an HTTP
        library's error quoting the request's Authorization header), the message's own API
        secret too (``Redactor.with_call``)."""
        self._takes_auth = _positional_params(consumer.send) >= 3
        self._buffers = callable(getattr(consumer, "flush", None))
        self._text = _validated_json if _only_parses(consumer) else _official_json

    def send(self, message: Message) -> None:
        endpoint = OFFICIAL_ENDPOINTS[message.endpoint]
        payload = self._text(message)
        try:
            if endpoint == "imports" and self._takes_auth:
                auth = message.auth
                secret = auth.api_secret.reveal() if auth and auth.api_secret is not None else None
                self.consumer.send(endpoint, payload, (auth.api_key if auth else None, secret))
            else:
                self.consumer.send(endpoint, payload)
        except Exception as exc:
            self._report(
                DeliveryReport(message, DeliveryStatus.FAILED, self._name, self._told(exc, message))
            )
            raise
        if not self._buffers:
            self._report(DeliveryReport(message, DeliveryStatus.ACCEPTED, self._name))

    def _told(self, error: Exception, message: Message) -> str:
        """What ``error`` says, redacted: of the configured credentials and of the API secret
        ``message`` came with."""
        return self._redactor.with_call(message.call_secret)(str(error))

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        flush = getattr(self.consumer, "flush", None)
        if flush is not None:
            flush()
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        return self.flush(timeout)


def _only_parses(consumer: Any) -> bool:
    """Whether ``consumer.send`` is a drop-in consumer's own, which only parses the text.

    Told by the very function ``send`` runs, so that a subclass overriding or wrapping it
    (``functools.wraps`` copies the module and the name), or a ``send`` replaced on the
    instance, gets the official text like any consumer of the user's.
    """
    from mixpanel_core.compat_consumers import BufferedConsumer, Consumer

    return getattr(consumer.send, "__func__", None) in (Consumer.send, BufferedConsumer.send)


def _official_json(message: Message) -> str:
    return wire.dumps_official(message.record)


def _validated_json(message: Message) -> str:
    # Cached when validation measured it (the default mixpanel_limits does): then only decoded.
    return message.json().decode()
