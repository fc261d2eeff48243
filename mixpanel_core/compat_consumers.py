"""``Consumer`` and ``BufferedConsumer``: the official consumers' constructors and behaviour,
delivered by the ingestion client (timeouts always bounded, 429 retried, batches up to 2,000).

Re-exported by ``mixpanel_core.compat``. Differences from the official package, all on the
safe side: plain ``http://`` URLs are accepted only on loopback; ``request_timeout=None`` means
the default bounded timeouts, not "wait forever"; ``retry_limit`` bounds the retries of a
request (``0``: none), and no retry starts after the ``HttpOptions`` time budget;
``BufferedConsumer`` is safe from many threads and keeps (for the next ``flush``) only the
records that failed, not the whole batch; what it still holds when the process exits is
flushed then (within ``EXIT_FLUSH_SECONDS``), and a ``fork()`` child starts with an empty
buffer (the parent sends what it held).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

import attrs

from mixpanel_core import wire
from mixpanel_core.compat import MixpanelException, ServiceAccountCredentials
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import AuthenticationError, ValidationError
from mixpanel_core.ingestion import HttpOptions, IngestionClient, records_limit
from mixpanel_core.messages import Endpoint, ImportAuth, Message, message_from_record
from mixpanel_core.process_exit import at_exit
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import DEFAULT_API_HOST, MixpanelSettings

logger = logging.getLogger(__name__)

EXIT_FLUSH_SECONDS = 5.0
"""Bound of ``BufferedConsumer``'s flush at interpreter exit (no request starts after it)."""

OFFICIAL_TO_CORE: dict[str, Endpoint] = {
    "events": "track",
    "people": "engage",
    "groups": "groups",
    "imports": "import",
}


class Consumer:
    """Sends every ``send`` at once, as its own request (the official ``Consumer``)."""

    def __init__(
        self,
        events_url: str | None = None,
        people_url: str | None = None,
        import_url: str | None = None,
        request_timeout: float | None = None,
        groups_url: str | None = None,
        api_host: str = DEFAULT_API_HOST,
        retry_limit: int = 4,
        retry_backoff_factor: float = 0.25,
        verify_cert: bool = True,
        credentials: ServiceAccountCredentials | None = None,
    ) -> None:
        urls = {
            "track": events_url,
            "engage": people_url,
            "import": import_url,
            "groups": groups_url,
        }
        settings = MixpanelSettings(
            api_host=api_host,
            urls={k: v for k, v in urls.items() if v},
            verify_tls=verify_cert,
        )
        if credentials is not None:
            settings = ServiceAccountCredentials.adopt(credentials).settings(settings)
        options = HttpOptions()
        if request_timeout is not None:
            options = attrs.evolve(
                options, connect_timeout=request_timeout, read_timeout=request_timeout
            )
        if retry_limit <= 0:
            options = attrs.evolve(options, retry_budget=0.0)
        else:
            options = attrs.evolve(
                options,
                backoff_base=max(retry_backoff_factor * 2, 0.01),
                max_retries=retry_limit,
            )
        self._client = IngestionClient(settings, options, name="compat")

    def send(
        self,
        endpoint: str,
        json_message: str,
        api_key: str | tuple[str | None, str | None] | None = None,
        api_secret: str | None = None,
    ) -> bool:
        """Send one record (or a JSON array of records) to ``endpoint`` now.

        ``endpoint`` is ``events``, ``people``, ``groups`` or ``imports``. Raises
        ``MixpanelException`` unless every record was accepted.
        """
        core = _core_endpoint(endpoint)
        self.send_messages(core, _messages(core, json_message, api_key, api_secret))
        return True

    def send_messages(
        self, core: Endpoint, messages: Sequence[Message], deadline: float | None = None
    ) -> None:
        """Send already built messages to ``core`` (``track``...); raises MixpanelException.

        ``deadline`` (``time.monotonic()``): no request starts, and no retry waits, after it.
        """
        try:
            result = self._client.send_batch(core, messages, deadline=deadline)
        except AuthenticationError as error:
            raise MixpanelException(str(error), reports=error.reports) from error
        if not result.ok:
            raise MixpanelException(_failure_text(result.reports), reports=result.reports)


class BufferedConsumer:
    """Holds up to ``max_size`` records per endpoint and sends them as one request.

    The official class caps ``max_size`` at 50; here it may be up to Mixpanel's own limit
    (2,000; 200 for groups). ``flush()`` sends everything held.
    """

    def __init__(
        self,
        max_size: int = 50,
        events_url: str | None = None,
        people_url: str | None = None,
        import_url: str | None = None,
        request_timeout: float | None = None,
        groups_url: str | None = None,
        api_host: str = DEFAULT_API_HOST,
        retry_limit: int = 4,
        retry_backoff_factor: float = 0.25,
        verify_cert: bool = True,
        credentials: ServiceAccountCredentials | None = None,
    ) -> None:
        self._consumer = Consumer(
            events_url,
            people_url,
            import_url,
            request_timeout,
            groups_url,
            api_host,
            retry_limit,
            retry_backoff_factor,
            verify_cert,
            credentials,
        )
        self._max_size = max(1, max_size)
        self._buffers: dict[str, list[Message]] = {name: [] for name in OFFICIAL_TO_CORE}
        self._lock = threading.RLock()
        in_fork_children(self, _forget_in_child)
        me = weakref.ref(self)
        # The official class loses its buffer at exit; this one sends it, within a bound.
        cancel_exit_flush = at_exit(lambda: _flush_at_exit(me))
        # A consumer built per web request and dropped must not leave its exit hook registered
        # for the life of the process. Cancelling only updates two registries (no lock, no
        # I/O): safe wherever the garbage collector frees the consumer.
        weakref.finalize(self, cancel_exit_flush).atexit = False

    def send(
        self,
        endpoint: str,
        json_message: str,
        api_key: str | tuple[str | None, str | None] | None = None,
        api_secret: str | None = None,
    ) -> None:
        """Buffer the record(s); send the endpoint's buffer once it holds ``max_size``.

        Raises ``MixpanelException`` (with ``message`` and ``endpoint``) if that send fails.
        """
        core = _core_endpoint(endpoint)
        messages = _messages(core, json_message, api_key, api_secret)
        with self._lock:
            buffer = self._buffers[endpoint]
            buffer.extend(messages)
            if len(buffer) >= min(self._max_size, records_limit(core)):
                self._flush_endpoint(endpoint)

    def flush(self) -> None:
        """Send everything buffered; raises ``MixpanelException`` for the first failure."""
        with self._lock:
            for endpoint in self._buffers:
                self._flush_endpoint(endpoint)

    def _held(self) -> int:
        """Records buffered, not yet sent (or kept after failing)."""
        with self._lock:
            return sum(map(len, self._buffers.values()))

    def _flush_endpoint(self, endpoint: str, deadline: float | None = None) -> None:
        core = OFFICIAL_TO_CORE[endpoint]
        limit = min(self._max_size, records_limit(core))
        buffer = self._buffers[endpoint]
        while buffer:
            batch = buffer[:limit]
            try:
                self._consumer.send_messages(core, batch, deadline)
            except MixpanelException as error:
                # Keep what may succeed later (FAILED); accepted and rejected records are done.
                retry = [
                    r.message
                    for r in error.reports
                    if r.status is DeliveryStatus.FAILED and r.message is not None
                ]
                self._buffers[endpoint] = retry + buffer[limit:]
                raised = MixpanelException(str(error), reports=error.reports)
                raised.message = wire.dumps_array(wire.dumps(m.record) for m in batch).decode()
                raised.endpoint = endpoint
                raise raised from error
            buffer = buffer[limit:]
            self._buffers[endpoint] = buffer


def _forget_in_child(consumer: BufferedConsumer) -> None:
    # The parent still holds, and will send, what was buffered before the fork: a child that
    # kept its copy would send every record twice. A lock held at fork() stays held: renew it.
    consumer._buffers = {name: [] for name in OFFICIAL_TO_CORE}
    consumer._lock = threading.RLock()


def _flush_at_exit(ref: weakref.ref[BufferedConsumer]) -> None:
    consumer = ref()
    if consumer is None or not consumer._held():
        return
    deadline = time.monotonic() + EXIT_FLUSH_SECONDS
    failures = []
    with consumer._lock:
        for endpoint in OFFICIAL_TO_CORE:  # each gets its chance, whatever the others do
            try:
                consumer._flush_endpoint(endpoint, deadline)
            except MixpanelException as error:
                failures.append(f"{endpoint}: {error}")
    if failures:
        logger.error(
            "BufferedConsumer: %d record(s) not delivered at exit (%s)",
            consumer._held(),
            "; ".join(failures),
        )


def _core_endpoint(endpoint: str) -> Endpoint:
    if endpoint not in OFFICIAL_TO_CORE:
        raise MixpanelException(
            f'No such endpoint "{endpoint}". Valid endpoints are one of {list(OFFICIAL_TO_CORE)}'
        )
    return OFFICIAL_TO_CORE[endpoint]


def _messages(
    endpoint: Endpoint,
    json_message: str,
    api_key: str | tuple[str | None, str | None] | None,
    api_secret: str | None,
) -> list[Message]:
    # The official BufferedConsumer hands its Consumer (api_key, api_secret) as one tuple.
    if isinstance(api_key, tuple):
        api_key, api_secret = api_key
    try:
        parsed: Any = wire.loads(json_message)
    except ValueError as exc:
        raise MixpanelException(f"json_message is not JSON: {exc}") from exc
    records = parsed if isinstance(parsed, list) else [parsed]
    auth = None
    if api_key is not None or api_secret is not None:
        auth = ImportAuth(api_key, Secret(api_secret) if api_secret is not None else None)
    try:
        messages = [message_from_record(endpoint, record) for record in records]
    except ValidationError as exc:
        raise MixpanelException(f"cannot send to /{endpoint}: {exc}") from exc
    if auth is not None:
        messages = [attrs.evolve(m, auth=auth) for m in messages]
    return messages


def _failure_text(reports: Sequence[DeliveryReport]) -> str:
    failed = [r for r in reports if r.status is not DeliveryStatus.ACCEPTED]
    first = failed[0]
    return f"Mixpanel error: {first.reason} ({len(failed)} of {len(reports)} records not accepted)"


__all__ = ["BufferedConsumer", "Consumer"]
