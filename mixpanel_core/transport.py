"""The transport interface: how a message leaves the pipeline.

A transport is any object with these three methods::

    send(message)          take one message. It may deliver at once (``http``), enqueue and
                           return (``buffered_http``, ``kafka``), or keep it (``memory``). It
                           raises ``TransportError`` when it cannot take the message (a full
                           queue under the ``fail`` policy); a synchronous transport raises
                           ``DeliveryError`` when the message was not accepted.
    flush(timeout=None)    deliver everything taken so far, waiting at most ``timeout``
                           seconds (``None``: the transport's configured bound, never forever;
                           else 0 to a day, ``ValueError`` otherwise: see ``bounded``).
                           Returns the messages still held, with no outcome yet (queued, in
                           flight, awaiting an acknowledgement); the transport goes on
                           delivering them. Messages rejected or failed by then are not
                           returned: they are reported, and dead-lettered and logged by the
                           transports that do (``multiprocessing_queue`` also returns those it
                           could not queue, reported FAILED). It raises ``TransportError`` when
                           it cannot return what it holds: another process holds it
                           (``multiprocessing_queue``: a sender that died or did not answer in
                           time). Returning fewer messages than are held is never allowed.
    close(timeout=None)    ``flush``, then release threads, sockets and processes. Returns the
                           messages it gave up on, each also reported FAILED; what a transport
                           in another process gave up on (the inner transport of
                           ``multiprocessing_queue``'s sender) is reported FAILED and
                           dead-lettered there instead. Idempotent.

Every outcome is reported through ``context.report`` (a ``DeliveryReport`` per message) so the
``mixpanel_delivered`` hook sees it; when ``context.observed`` is false, a transport may leave
out the reports of accepted messages, never the others. Transports are built by the class the
entry point names, through ``from_config(options, context)``; ``options`` is the transport's
TOML table without ``type``, and unknown keys must fail (``mixpanel_core.schema.read`` does
that).

A transport may also implement ``RecordSink`` (``send_records(endpoint, records)``) to take
records another process already validated and encoded: the ``multiprocessing_queue`` sender
then hands them over as they are instead of rebuilding each message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from mixpanel_core.delivery import DeliveryReport, Reporter, note_report
from mixpanel_core.messages import Endpoint, Message
from mixpanel_core.schema import check_seconds
from mixpanel_core.settings import MixpanelSettings

if TYPE_CHECKING:
    from mixpanel_core.config import Config

logger = logging.getLogger("mixpanel_core.transport")


@runtime_checkable
class Transport(Protocol):
    """See the module docstring for the whole contract."""

    def send(self, message: Message) -> None: ...

    def flush(self, timeout: float | None = None) -> Sequence[Message]: ...

    def close(self, timeout: float | None = None) -> Sequence[Message]: ...


@runtime_checkable
class RecordSink(Protocol):
    """Optional: a transport that takes encoded records as well as messages."""

    def send_records(self, endpoint: Endpoint, records: Sequence[bytes]) -> None:
        """Take records for ``endpoint``, in order: each its compact wire JSON, validated.

        A record it cannot take is reported (DROPPED or FAILED), not raised; it raises
        (``TransportError``, ``ValidationError``) only having taken none of them. Reports
        carry the message rebuilt from the record.
        """
        ...


def ignore_report(report: DeliveryReport) -> None:
    """The default reporter when no pipeline listens (transports used on their own).

    The report is still noted for ``reports_made_here``: whoever hands a message to another
    transport (a ``multiprocessing_queue`` to its fallback) must know whether that one
    reported it, whether or not anyone reads reports, or what its ``close()`` returns would
    depend on it."""
    note_report(report)


def _no_other_transports(name: str) -> Transport:
    from mixpanel_core.errors import ConfigError

    raise ConfigError(f"transport {name!r} is not configured here")


def _hands_to_nothing(name: str) -> None:
    """Outside a pipeline no other transport is flushed or closed with this one."""


@attrs.frozen
class TransportContext:
    """What a transport gets besides its own options when it is built."""

    name: str
    """The transport's name in ``[transports.NAME]``; used in reports and errors."""
    settings: MixpanelSettings = attrs.field(factory=MixpanelSettings)
    """The ``[mixpanel]`` table: token, host, credentials."""
    report: Reporter = ignore_report
    """Call with every ``DeliveryReport``."""
    resolve: Callable[[str], Transport] = _no_other_transports
    """Returns another configured transport by name (for ``inner = "direct"`` wrappers)."""
    config: Config | None = None
    """The whole configuration, for a transport that rebuilds others elsewhere (the
    ``multiprocessing_queue`` sender process); ``None`` when built outside a pipeline."""
    observed: bool = True
    """Whether any plugin observes delivery reports. When none does, ``report`` is
    ``ignore_report``: a transport may skip building reports of accepted messages, or
    shipping them across processes. Failures are still reported, dead-lettered and logged."""
    hands_to: Callable[[str], None] = _hands_to_nothing
    """Says, without building it, that this transport may hand messages to another one by
    name later (a fallback): the client then flushes and closes this one first."""

    @property
    def path(self) -> str:
        """The key path of this transport's table, for error messages."""
        return f"transports.{self.name}"


class TransportFactory(Protocol):
    """What an entry point in ``mixpanel_core.transports`` must name (usually a class)."""

    def from_config(self, options: Mapping[str, Any], context: TransportContext) -> Transport: ...


_TOLD_AUTH_NOT_CARRIED: set[str] = set()


def tell_auth_not_carried(transport: str, authenticated_by: str) -> None:
    """Log, once per transport name and process, that the per-call legacy credentials of
    ``import_data``/``merge`` are not carried by ``transport`` (they are not written to a
    queue or topic): ``/import`` is then authenticated by ``authenticated_by``'s settings,
    which also decide the project the records land in."""
    if transport in _TOLD_AUTH_NOT_CARRIED:
        return
    _TOLD_AUTH_NOT_CARRIED.add(transport)
    logger.warning(
        "transport %r does not carry the api_key/api_secret given to import_data() or "
        "merge(): /import is authenticated with %s, which also decide the project the "
        "records land in (told once per transport name)",
        transport,
        authenticated_by,
    )


def bounded(timeout: float | None, default: float) -> float:
    """The seconds a ``flush``/``close`` called with ``timeout`` may wait: ``default`` (the
    transport's configured bound) for ``None``.

    Raises ``ValueError`` naming ``timeout`` unless it is a number of seconds from 0 to a day:
    ``inf`` overflowed the lock waits, ``nan`` made one wait forever, a negative one meant
    nothing.
    """
    if timeout is None:
        return default
    check_seconds("timeout", timeout)
    return timeout
