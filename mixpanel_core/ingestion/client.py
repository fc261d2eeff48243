"""``IngestionClient``: sends batches to Mixpanel's ingestion API and says what became of each.

The one place that encodes, authenticates, compresses, posts, classifies and retries. Both
HTTP transports and the forwarder deliver through it. The retry loop is ours (not urllib3's)
because it must classify each record, split on 413, respect a time budget and do all of its
waiting through the caller's ``wait`` function.
"""

from __future__ import annotations

import gzip
import time
import urllib.parse
from collections.abc import Callable, Sequence

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.ingestion.auth import (
    ImportCredentials,
    configured_credentials,
    credentials_for,
)
from mixpanel_core.ingestion.batching import records_limit, split_encoded
from mixpanel_core.ingestion.classify import (
    Classification,
    Verdict,
    classify_response,
    network_failure,
)
from mixpanel_core.ingestion.encoding import Encoded, WireFormat, wire_format
from mixpanel_core.ingestion.endpoints import endpoint_urls
from mixpanel_core.ingestion.http import HttpSession, NetworkError, RequestError, TlsError
from mixpanel_core.ingestion.options import HttpOptions
from mixpanel_core.ingestion.result import BatchResult
from mixpanel_core.messages import ENDPOINTS, Endpoint, Message
from mixpanel_core.settings import MixpanelSettings

Wait = Callable[[float], None]
"""Sleeps for the given seconds; the forwarder passes one that keeps polling Kafka meanwhile."""


class _CredentialsRefusedError(Exception):
    """Internal: a 401/403 ended the request; carries what the error message needs."""

    def __init__(self, outcome: Classification, attempts: int) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome
        self.attempts = attempts


class _Call:
    """The clock of one ``send_batch`` call: when it started, the budget and the deadline."""

    def __init__(self, client: IngestionClient, wait: Wait, deadline: float | None) -> None:
        self.started = time.monotonic()
        self.policy = client.options.retry_policy
        self.wait = wait
        self.deadline = deadline

    def remaining(self) -> float:
        return self.policy.remaining(self.started, time.monotonic(), self.deadline)

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


class IngestionClient:
    """Delivers batches of messages to Mixpanel; thread-safe (one connection pool, fork-aware).

    ``send_batch`` returns a ``BatchResult`` with one report per message, in order. It raises
    ``AuthenticationError`` (carrying every report, the unsent ones FAILED) when Mixpanel
    refuses the credentials. ``name`` is the transport name written into the reports.
    """

    def __init__(
        self,
        settings: MixpanelSettings,
        options: HttpOptions | None = None,
        *,
        name: str = "http",
    ) -> None:
        self.settings = settings
        self.options = options or HttpOptions()
        self.name = name
        self.urls = endpoint_urls(settings)
        self._credentials = configured_credentials(settings)
        self._formats = {e: wire_format(e, self.options.import_format) for e in ENDPOINTS}
        self._http = HttpSession(self.options.pool_size, settings.verify_tls)

    # -- encoding -------------------------------------------------------------------------

    def wire_format(self, endpoint: Endpoint) -> WireFormat:
        """How bodies for ``endpoint`` are framed (for senders that encode ahead of time)."""
        return self._formats[endpoint]

    def encode(self, endpoint: Endpoint, messages: Sequence[Message]) -> list[Encoded]:
        """Each message's record as it will appear in a body to ``endpoint``."""
        return self._formats[endpoint].encode_messages(messages)

    # -- sending --------------------------------------------------------------------------

    def send_batch(
        self,
        endpoint: Endpoint,
        messages: Sequence[Message],
        *,
        wait: Wait = time.sleep,
        deadline: float | None = None,
    ) -> BatchResult:
        """Deliver ``messages`` to ``endpoint``, retrying within the budget.

        Messages beyond one request's limits are sent as several requests. ``deadline`` is a
        ``time.monotonic()`` value after which no request starts and no wait begins.
        """
        return self.send_encoded(endpoint, self.encode(endpoint, messages), wait, deadline)

    def send_encoded(
        self,
        endpoint: Endpoint,
        items: Sequence[Encoded],
        wait: Wait = time.sleep,
        deadline: float | None = None,
    ) -> BatchResult:
        """``send_batch`` for records already encoded with ``encode`` (no second encoding)."""
        call = _Call(self, wait, deadline)
        reports: list[DeliveryReport | None] = [None] * len(items)
        refused: tuple[ImportCredentials | None, _CredentialsRefusedError] | None = None
        for credentials, positions in self._by_credentials(endpoint, items):
            if refused is not None:
                for position in positions:
                    reports[position] = self._report(
                        items[position].message,
                        DeliveryStatus.FAILED,
                        "not sent: Mixpanel refused the credentials of an earlier request",
                    )
                continue
            batch = [items[p] for p in positions]
            try:
                done = self._deliver_all(endpoint, credentials, batch, call)
            except _CredentialsRefusedError as error:
                refused = (credentials, error)
                done = [self._failed(item.message, error.outcome, error.attempts) for item in batch]
            for position, report in zip(positions, done, strict=True):
                reports[position] = report
        final = tuple(r for r in reports if r is not None)
        if refused is not None:
            raise AuthenticationError(self._refusal_text(endpoint, *refused), final)
        return BatchResult(final)

    def _by_credentials(
        self, endpoint: Endpoint, items: Sequence[Encoded]
    ) -> list[tuple[ImportCredentials | None, list[int]]]:
        """Positions of ``items`` grouped by the credentials that authenticate them."""
        if endpoint != "import":
            return [(None, list(range(len(items))))]
        groups: dict[ImportCredentials | None, list[int]] = {}
        for position, item in enumerate(items):
            key = credentials_for(item.message, self._credentials)
            groups.setdefault(key, []).append(position)
        return list(groups.items())

    def _deliver_all(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        items: list[Encoded],
        call: _Call,
    ) -> list[DeliveryReport]:
        fmt = self._formats[endpoint]
        limit = records_limit(endpoint, self.options.max_batch_records)
        reports: list[DeliveryReport] = []
        for batch in split_encoded(items, fmt, self.options.max_batch_bytes, limit):
            reports.extend(self._deliver(endpoint, credentials, batch, call, 0))
        return reports

    def _deliver(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        batch: list[Encoded],
        call: _Call,
        attempts: int,
    ) -> list[DeliveryReport]:
        """One batch until it is settled: accepted, rejected, split, or out of budget."""
        if endpoint == "import" and credentials is None:
            return [
                self._report(item.message, DeliveryStatus.FAILED, _NO_CREDENTIALS) for item in batch
            ]
        body = self._formats[endpoint].body(batch)
        if len(body) > self.options.max_batch_bytes and len(batch) > 1:
            # Percent-encoding made the body bigger than the budget: split before sending.
            half = len(batch) // 2
            return self._deliver(endpoint, credentials, batch[:half], call, attempts) + (
                self._deliver(endpoint, credentials, batch[half:], call, attempts)
            )
        retries = 0
        while True:
            if call.past_deadline():
                reason = "not sent: the deadline passed first"
                return [
                    self._report(i.message, DeliveryStatus.FAILED, reason, None, attempts)
                    for i in batch
                ]
            attempts += 1
            outcome = self._post(endpoint, credentials, body, call)
            verdict = outcome.verdict
            if verdict is Verdict.ACCEPTED:
                return [
                    self._report(
                        i.message, DeliveryStatus.ACCEPTED, None, outcome.http_status, attempts
                    )
                    for i in batch
                ]
            if verdict is Verdict.PARTIAL:
                return self._partial(batch, outcome, attempts)
            if verdict is Verdict.REJECTED:
                return [self._rejected(i.message, outcome, attempts) for i in batch]
            if verdict is Verdict.AUTH:
                raise _CredentialsRefusedError(outcome, attempts)
            if verdict is Verdict.TOO_LARGE:
                if len(batch) == 1:
                    return [self._rejected(batch[0].message, outcome, attempts)]
                half = len(batch) // 2
                return self._deliver(
                    endpoint, credentials, batch[:half], call, attempts
                ) + self._deliver(endpoint, credentials, batch[half:], call, attempts)
            if verdict is Verdict.FAILED:
                return [self._failed(i.message, outcome, attempts) for i in batch]
            retries += 1
            delay = call.policy.delay(
                retries, rate_limited=outcome.rate_limited, retry_after=outcome.retry_after
            )
            if delay > call.remaining():
                return [self._failed(i.message, outcome, attempts) for i in batch]
            call.wait(delay)

    def _post(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        body: bytes,
        call: _Call,
    ) -> Classification:
        headers = {"Content-Type": self._formats[endpoint].content_type}
        if self.options.gzip:
            # Level 5: most of the size win of 9 at a fraction of the CPU, on JSON.
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        url = self.urls[endpoint]
        params: dict[str, str] = {}
        if endpoint == "import":
            if self.options.strict:
                params["strict"] = "1"
            if credentials is not None:
                headers["Authorization"] = credentials.header.reveal()
                if credentials.project_id is not None:
                    params["project_id"] = credentials.project_id
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(params)}"
        try:
            response = self._http.post(url, body, headers, self._timeout(call))
        except TlsError as exc:
            # A certificate does not fix itself between retries: fail now, and say why.
            return Classification(Verdict.FAILED, None, f"TLS failure talking to {url}: {exc}")
        except NetworkError as exc:
            return network_failure(str(exc))
        except RequestError as exc:
            return Classification(Verdict.FAILED, None, str(exc))
        return classify_response(endpoint, response.status_code, response.content, response.headers)

    def _timeout(self, call: _Call) -> tuple[float, float]:
        connect, read = self.options.timeout
        if call.deadline is not None:
            left = max(0.01, call.deadline - time.monotonic())
            connect, read = min(connect, left), min(read, left)
        return connect, read

    def close(self) -> None:
        """Close every pooled connection."""
        self._http.close()

    # -- reports --------------------------------------------------------------------------

    def _report(
        self,
        message: Message,
        status: DeliveryStatus,
        reason: str | None,
        http_status: int | None = None,
        attempts: int = 0,
        field: str | None = None,
    ) -> DeliveryReport:
        return DeliveryReport(message, status, self.name, reason, http_status, attempts, field)

    def _failed(self, message: Message, outcome: Classification, attempts: int) -> DeliveryReport:
        reason = outcome.reason or "failed"
        if outcome.verdict is Verdict.RETRY:
            reason = f"gave up after {attempts} attempt(s) within the retry budget: {reason}"
        return self._report(message, DeliveryStatus.FAILED, reason, outcome.http_status, attempts)

    def _rejected(self, message: Message, outcome: Classification, attempts: int) -> DeliveryReport:
        return self._report(
            message, DeliveryStatus.REJECTED, outcome.reason, outcome.http_status, attempts
        )

    def _partial(
        self, batch: list[Encoded], outcome: Classification, attempts: int
    ) -> list[DeliveryReport]:
        failures: dict[int, list[str]] = {}
        fields: dict[int, str | None] = {}
        for failure in outcome.failures:
            failures.setdefault(failure.index, []).append(
                f"{failure.field}: {failure.message}" if failure.field else failure.message
            )
            fields.setdefault(failure.index, failure.field)
        reports = []
        for index, item in enumerate(batch):
            if index in failures:
                reports.append(
                    self._report(
                        item.message,
                        DeliveryStatus.REJECTED,
                        "; ".join(failures[index]),
                        outcome.http_status,
                        attempts,
                        fields[index],
                    )
                )
            else:
                reports.append(
                    self._report(
                        item.message, DeliveryStatus.ACCEPTED, None, outcome.http_status, attempts
                    )
                )
        return reports

    def _refusal_text(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        error: _CredentialsRefusedError,
    ) -> str:
        used = (
            credentials.describe()
            if credentials is not None
            else "project token inside the records"
        )
        return (
            f"Mixpanel refused the {used} for /{endpoint} "
            f"(HTTP {error.outcome.http_status}): {error.outcome.reason}. Retrying cannot help: "
            "check the credentials in [mixpanel] (service_account_username/"
            "service_account_secret with project_id, api_secret, or token)."
        )


_NO_CREDENTIALS = (
    "not sent: /import needs credentials; set mixpanel.service_account_username, "
    "service_account_secret and project_id (recommended), or api_secret, or token"
)
