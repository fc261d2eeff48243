"""``Consumer`` and ``BufferedConsumer``: the official consumers' constructors and behaviour,
delivered by the ingestion client (timeouts always bounded, 429 retried, batches up to 2,000).

Re-exported by ``mixpanel_core.compat``. Differences from the official package, all on the
safe side: plain ``http://`` URLs are accepted only on loopback; ``request_timeout=None`` means
the default bounded timeouts, not "wait forever"; ``retry_limit`` bounds the retries of a
request (``0``: none; ``None``: no count), and no retry starts after the ``HttpOptions``
time budget;
``BufferedConsumer`` is safe from many threads and keeps (for the next ``flush``) only the
records that failed, not the whole batch; one freed while holding records (built per web
request, never flushed) hands them to a thread that sends them, unless ``MAX_ORPHANED_RECORDS``
already wait for it; what it still holds when the process exits is flushed then (within
``EXIT_FLUSH_SECONDS``), and a ``fork()`` child starts with an empty buffer (the parent sends
what it held). What cannot be delivered, or is dropped, is logged at ERROR with its count.

How the official arguments are read is ``compat_arguments``'s; the records a
``BufferedConsumer`` holds, and all that happens to them at exit, after fork and once it is
freed (and those two bounds), are ``compat_buffers``'s.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import attrs

from mixpanel_core.api_limits import MAX_RECORDS_PER_REQUEST
from mixpanel_core.compat import MixpanelException, ServiceAccountCredentials
from mixpanel_core.compat_arguments import (
    OFFICIAL_TO_CORE,
    checked_backoff_factor,
    checked_max_size,
    checked_retry_limit,
    connect_and_read_timeouts,
    core_endpoint,
    named_as_arguments,
    official_messages,
    tls_settings,
)
from mixpanel_core.compat_buffers import Buffers, flush_at_exit, hand_over

# Also under its name from before the split: tests start the orphan thread through this module.
from mixpanel_core.compat_buffers import orphan_thread as _orphans
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.ingestion import Deadline, HttpOptions, IngestionClient
from mixpanel_core.messages import Endpoint, Message
from mixpanel_core.process_exit import at_exit
from mixpanel_core.settings import DEFAULT_API_HOST, MixpanelSettings


class Consumer:
    """Sends every ``send`` at once, as its own request (the official ``Consumer``).

    ``_endpoints`` maps the official endpoint names to the URLs used, as the official class's
    does; read-only, since changing it would not change where records go.
    """

    def __init__(
        self,
        events_url: str | None = None,
        people_url: str | None = None,
        import_url: str | None = None,
        request_timeout: float | tuple[float, float] | None = None,
        groups_url: str | None = None,
        api_host: str = DEFAULT_API_HOST,
        retry_limit: int | None = 4,
        retry_backoff_factor: float = 0.25,
        verify_cert: bool | str | os.PathLike[str] = True,
        credentials: ServiceAccountCredentials | None = None,
    ) -> None:
        urls = {
            "track": events_url,
            "engage": people_url,
            "import": import_url,
            "groups": groups_url,
        }
        with named_as_arguments():
            settings = MixpanelSettings(
                api_host=api_host,
                urls={k: v for k, v in urls.items() if v},
                **tls_settings(verify_cert),
            )
        if credentials is not None:
            settings = ServiceAccountCredentials.adopt(credentials).settings(settings)
        options = HttpOptions()
        if request_timeout is not None:
            connect, read = connect_and_read_timeouts(request_timeout)
            options = attrs.evolve(options, connect_timeout=connect, read_timeout=read)
        backoff_factor = checked_backoff_factor(retry_backoff_factor)
        retries = checked_retry_limit(retry_limit)
        if retries == 0:
            # The count too, so a failure names the limit the user set (not the budget).
            options = attrs.evolve(options, retry_budget=0.0, max_retries=0)
        else:
            first_wait = max(backoff_factor * 2, 0.01)
            options = attrs.evolve(
                options,
                backoff_base=first_wait,
                backoff_cap=max(options.backoff_cap, first_wait),  # the factor asked is waited
                max_retries=retries,
            )
        with named_as_arguments():  # it checks the URLs
            self._client = IngestionClient(settings, options, name="compat")
        self._endpoints: Mapping[str, str] = MappingProxyType(
            {name: self._client.urls[core] for name, core in OFFICIAL_TO_CORE.items()}
        )

    def send(
        self,
        endpoint: str,
        json_message: str,
        api_key: str | tuple[str | None, str | None] | None = None,
        api_secret: str | None = None,
    ) -> None:
        """Send one record (or a JSON array of records) to ``endpoint`` now.

        ``endpoint`` is ``events``, ``people``, ``groups`` or ``imports``. Raises
        ``MixpanelException`` unless every record was accepted.
        """
        core = core_endpoint(endpoint)
        self.send_messages(core, official_messages(core, json_message, api_key, api_secret))

    def send_messages(
        self, core: Endpoint, messages: Sequence[Message], deadline: Deadline = None
    ) -> None:
        """Send already built messages to ``core`` (``track``...); raises MixpanelException.

        ``deadline`` (``time.monotonic()``, or a function saying it now, see ``Deadline``): no
        request starts, and no retry waits, after it.
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
    (2,000; 200 for groups), and a larger one is that limit. ``flush()`` sends everything held.
    ``_max_size`` reads the batch size, capped, as on the official class (``/groups`` batches
    are capped at 200 besides).
    """

    def __init__(
        self,
        max_size: int = 50,
        events_url: str | None = None,
        people_url: str | None = None,
        import_url: str | None = None,
        request_timeout: float | tuple[float, float] | None = None,
        groups_url: str | None = None,
        api_host: str = DEFAULT_API_HOST,
        retry_limit: int | None = 4,
        retry_backoff_factor: float = 0.25,
        verify_cert: bool | str | os.PathLike[str] = True,
        credentials: ServiceAccountCredentials | None = None,
    ) -> None:
        # The official class caps it at its own limit (50), and shows the cap in _max_size.
        batch_size = min(checked_max_size(max_size), MAX_RECORDS_PER_REQUEST)
        consumer = Consumer(
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
        buffers = self._held = Buffers(consumer, batch_size)
        _orphans.start()
        # The official class loses its buffer at exit; this one sends it, within a bound. The
        # hook holds the buffers, not the consumer: a consumer freed holding records leaves
        # them to the orphan thread, and until that thread is done, to this hook at exit.
        cancel_exit_flush = at_exit(lambda: flush_at_exit(buffers))
        weakref.finalize(self, hand_over, buffers, cancel_exit_flush).atexit = False

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
        core = core_endpoint(endpoint)
        self._held.add(endpoint, official_messages(core, json_message, api_key, api_secret))

    def flush(self) -> None:
        """Send everything buffered; raises ``MixpanelException`` for the first failure."""
        with self._held.lock:
            for endpoint in OFFICIAL_TO_CORE:
                self._held.flush_endpoint(endpoint)

    @property
    def _max_size(self) -> int:
        return self._held.max_size


def _failure_text(reports: Sequence[DeliveryReport]) -> str:
    failed = [r for r in reports if r.status is not DeliveryStatus.ACCEPTED]
    first = failed[0]
    return f"Mixpanel error: {first.reason} ({len(failed)} of {len(reports)} records not accepted)"


__all__ = ["BufferedConsumer", "Consumer"]
