"""Delivery reports: what became of each message once a transport dealt with it."""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Callable, Iterable, Iterator

import attrs

from mixpanel_core.messages import Message


class DeliveryStatus(enum.Enum):
    """The outcome of one message."""

    ACCEPTED = "accepted"
    """Mixpanel (or the durable hop, e.g. a Kafka broker) took it."""
    REJECTED = "rejected"
    """Mixpanel refused it for good (strict-mode 400 entry, ``status: 0``); resending won't help."""
    FAILED = "failed"
    """Still not delivered after the retry budget, or refused credentials; it may be resent."""
    DROPPED = "dropped"
    """Never sent: invalid under the ``drop`` policy, or a full queue's drop policy."""


@attrs.frozen
class DeliveryReport:
    """One message's outcome, as seen by the delivery-observation hook.

    ``message`` is ``None`` only for input that could not even become a message (for example a
    property value JSON cannot carry, under the ``drop`` policy); ``reason`` then says why.
    """

    message: Message | None
    status: DeliveryStatus
    transport: str
    reason: str | None = None
    http_status: int | None = None
    attempts: int = 0
    field: str | None = None
    """For a rejection: the field Mixpanel named (``properties.time``), when it named one."""
    retry_after: float | None = None
    """For a failure: the seconds the last answer's ``Retry-After`` asked to wait, if it had
    one (a sender that tries again later waits at least that long)."""
    maybe_applied: bool = False
    """Not accepted, yet Mixpanel may have applied it: an attempt that may have reached it got
    no answer (a read timeout, a connection lost), or it was one of several records of a
    request Mixpanel refused with a ``status: 0`` naming none (it keeps the valid ones). Sent
    again, a profile or group update (``$add``, ``$append``) would be applied twice; the
    reason says so too."""

    @property
    def ok(self) -> bool:
        return self.status is DeliveryStatus.ACCEPTED

    def without_call_secret(self) -> DeliveryReport:
        """This report, its message without the API secret given with its call (see
        ``Message.without_call_secret``): the same report when it has none."""
        message = self.message
        if message is None or message.call_secret is None:
            return self
        return attrs.evolve(self, message=message.without_call_secret())


Reporter = Callable[[DeliveryReport], None]
"""Where transports send their reports; the pipeline passes them to ``mixpanel_delivered``."""


def reports_for(
    messages: Iterable[Message | None],
    status: DeliveryStatus,
    transport: str,
    reason: str | None = None,
    http_status: int | None = None,
    attempts: int = 0,
    field: str | None = None,
    retry_after: float | None = None,
    maybe_applied: bool = False,
) -> list[DeliveryReport]:
    """One report per message, all with the same outcome (the records of one request).

    Equal to calling ``DeliveryReport(message, status, ...)`` for each, at less than half
    the cost: a sender settles up to 2,000 records a request, and the generated ``__init__``
    goes through ``object.__setattr__`` once per field. The slots are filled directly.
    """
    new = object.__new__
    cls = DeliveryReport
    reports = []
    for message in messages:
        report = new(cls)
        _set_message(report, message)
        _set_status(report, status)
        _set_transport(report, transport)
        _set_reason(report, reason)
        _set_http_status(report, http_status)
        _set_attempts(report, attempts)
        _set_field(report, field)
        _set_retry_after(report, retry_after)
        _set_maybe_applied(report, maybe_applied)
        reports.append(report)
    return reports


# The slot setters ``reports_for`` uses; a field added to ``DeliveryReport`` must be added
# here too (a test compares every field against the generated ``__init__``).
_set_message = DeliveryReport.__dict__["message"].__set__
_set_status = DeliveryReport.__dict__["status"].__set__
_set_transport = DeliveryReport.__dict__["transport"].__set__
_set_reason = DeliveryReport.__dict__["reason"].__set__
_set_http_status = DeliveryReport.__dict__["http_status"].__set__
_set_attempts = DeliveryReport.__dict__["attempts"].__set__
_set_field = DeliveryReport.__dict__["field"].__set__
_set_retry_after = DeliveryReport.__dict__["retry_after"].__set__
_set_maybe_applied = DeliveryReport.__dict__["maybe_applied"].__set__


class _Here(threading.local):
    seen: list[Message] | None = None
    """The messages reported on this thread since its innermost ``reports_made_here``; read
    for every report, so a class default: a thread that never entered a block finds it
    without a failed lookup (about 45 ns against 370)."""


_here = _Here()


@contextlib.contextmanager
def reports_made_here() -> Iterator[list[Message]]:
    """Keep the messages reported on this thread (``note_report``) within the block.

    Around a call of another transport that may report a message and then raise (the kafka
    transport reports FAILED, then raises ``TransportError``; mixpanel-core's own
    ``ConsumerTransport`` too): the caller reports only what that transport did not, or the
    hook sees two outcomes of one message. Only this thread's: a transport's own threads
    report other messages at any time. A block inside another's gives what it saw to the
    outer one as well.
    """
    outer = _here.seen
    seen: list[Message] = []
    _here.seen = seen
    try:
        yield seen
    finally:
        _here.seen = outer
        if outer is not None:
            outer.extend(seen)


def note_report(report: DeliveryReport) -> None:
    """Called with each report by the reporters transports are given (the pipeline's
    ``mixpanel_delivered`` observers, ``ignore_report`` when none, the
    ``multiprocessing_queue`` sender's relay): see ``reports_made_here``."""
    seen = _here.seen
    if seen is not None and report.message is not None:
        seen.append(report.message)
