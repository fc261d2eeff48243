"""One attempt of a request: its URL and headers built, posted within its timeouts (under a
deadline that may move, abandoned once it passes), and its answer classified."""

from __future__ import annotations

import concurrent.futures
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping

import attrs
from urllib3 import HTTPHeaderDict

from mixpanel_core.ingestion.auth import ImportCredentials
from mixpanel_core.ingestion.call import Call
from mixpanel_core.ingestion.classify import (
    HEADERS_READ,
    Classification,
    Verdict,
    classify_response,
    network_failure,
    proxy_refusal,
)
from mixpanel_core.ingestion.encoding import WireFormat
from mixpanel_core.ingestion.endpoints import url_query
from mixpanel_core.ingestion.http import HttpSession, Response
from mixpanel_core.ingestion.options import HttpOptions
from mixpanel_core.ingestion.request_watch import request_ceiling
from mixpanel_core.ingestion.session_errors import (
    NetworkError,
    ProxyAuthError,
    RequestError,
    TlsError,
)
from mixpanel_core.messages import Endpoint
from mixpanel_core.redactor import WITHHELD, Redactor
from mixpanel_core.settings import shown_url

WATCH_INTERVAL = 0.05
"""How often a request under a movable deadline checks whether that deadline has passed."""


class _AbandonedError(Exception):
    """Internal: a request still unanswered when the call's deadline passed."""


class EndpointRedactors:
    """By endpoint, the redactor of what its answers say: of the ``[mixpanel]`` credentials,
    and of those of the proxy the endpoint's URL goes through, if any (only that proxy's: a
    short password would rewrite the answers of every other URL too). Each is made at the
    first answer of its endpoint that needs it: one with a proxy's credentials costs a
    compiled pattern, and most clients never get such an answer."""

    def __init__(self, redactor: Redactor, http: HttpSession, urls: Mapping[Endpoint, str]):
        self._redactor = redactor
        self._http = http
        self._urls = urls
        self._made: dict[Endpoint, Redactor] = {}

    def of(self, endpoint: Endpoint) -> Redactor:
        made = self._made.get(endpoint)
        if made is None:
            found = self._http.proxy_credentials(self._urls[endpoint])
            # Two threads may both make it: the same redactor, one of them kept.
            made = self._made.setdefault(endpoint, self._redactor.with_credentials(found))
        return made


class Poster:
    """Makes the attempts of one client's requests, through its ``HttpSession``."""

    def __init__(
        self,
        http: HttpSession,
        urls: Mapping[Endpoint, str],
        formats: Mapping[Endpoint, WireFormat],
        options: HttpOptions,
        redactors: EndpointRedactors,
    ) -> None:
        self._http = http
        self._urls = urls
        self._formats = formats
        self._options = options
        self._redactors = redactors
        """By endpoint: of the ``[mixpanel]`` credentials and those of the proxy its URL goes
        through, for what an answer says (``_redacted``)."""
        self._import_query = frozenset(url_query(urls["import"]))
        """What the ``/import`` URL's own query says: the client's parameters of those names
        (``strict``, ``ip``, ``project_id``) are left out, the URL's are sent."""

    def post(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        body: bytes,
        records: int,
        call: Call,
        *,
        budget: float | None = None,
        counted_once: Callable[[], bool],
    ) -> Classification:
        """One attempt; ``budget``: what is left of the retry budget for a retry, which
        bounds it (see ``_timeout``); ``counted_once``: whether Mixpanel counts the records
        once however often they arrive (see ``HttpSession.post``)."""
        headers = {"Content-Type": self._formats[endpoint].content_type}
        if self._options.gzip:
            headers["Content-Encoding"] = "gzip"  # ``body`` was compressed by the client
        url = self._urls[endpoint]
        params: dict[str, str] = {}
        if endpoint == "import":
            if self._options.strict:
                params["strict"] = "1"
            # As the official client sends it (a form field there): no geolocation from the
            # sending server's address, which would give every event its location.
            params["ip"] = "0"
            if credentials is not None:
                headers["Authorization"] = credentials.header.reveal()
                if credentials.project_id is not None:
                    params["project_id"] = credentials.project_id
            if self._import_query:
                params = {k: v for k, v in params.items() if k not in self._import_query}
        if params:  # after the query of a mixpanel.urls.NAME, if it has one
            url = f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(params)}"
        response: Response | None = None
        received_before = False  # see Response.maybe_received_before, SessionError
        try:
            if call.movable:
                response = self._post_watched(url, body, headers, call, budget, counted_once)
            else:
                timeout, total = self._timeout(call, budget)
                response = self._http.post(url, body, headers, timeout, total, counted_once)
        except _AbandonedError as exc:
            answer = Classification(Verdict.FAILED, None, str(exc), maybe_received=True)
        except ProxyAuthError as exc:
            answer = proxy_refusal(str(exc))
            received_before = exc.maybe_received
        except TlsError as exc:
            # A refused certificate does not fix itself between retries: fail now, say why.
            # (A handshake the peer cut short arrives as a NetworkError and is retried.)
            shown = shown_url(self._urls[endpoint])  # a query may hold a credential
            answer = Classification(Verdict.FAILED, None, f"TLS failure talking to {shown}: {exc}")
            received_before = exc.maybe_received
        except NetworkError as exc:
            answer = network_failure(str(exc), maybe_received=exc.maybe_received)
        except RequestError as exc:
            answer = Classification(Verdict.FAILED, None, str(exc))
            received_before = exc.maybe_received
        else:
            answer = classify_response(
                endpoint, response.status_code, response.content, response.headers, records
            )
            received_before = response.maybe_received_before
        if answer.verdict is Verdict.ACCEPTED:
            return answer
        answer = self._redacted(answer, credentials, endpoint, response, records)
        if received_before and not answer.maybe_received:
            # Whatever this try was answered, the one before it may have been applied. Added
            # after _redacted, whose classification of the redacted answer must mean the same.
            answer = attrs.evolve(answer, maybe_received=True)
        return answer

    def _redacted(
        self,
        answer: Classification,
        credentials: ImportCredentials | None,
        endpoint: Endpoint,
        response: Response | None,
        records: int,
    ) -> Classification:
        """``answer`` holding none of the credentials the request was sent with: a proxy's or
        firewall's page may echo its ``Authorization`` header, and what an answer says goes
        into reports, errors, logs and dead letters.

        The texts are those of the answer classified again from its body and headers
        redacted whole, as a reason quotes only the start of a page and a secret cut there
        would match nothing. A body or header that still spells a credential (an escape the
        redactor does not know, a page in Latin-1) is withheld whole, and so is each text
        that does once redacted (``Redactor.guarded``). What the answer means (its verdict,
        the records it names) is always the first classification's: replacing a secret as
        short as ``e`` breaks Mixpanel's JSON."""
        call_secret = None if credentials is None else credentials.call_secret
        redact = self._redactors.of(endpoint).with_call(call_secret)
        if redact.knows_none:
            return answer
        if response is not None:
            # Only those classifying reads: any other may be large, and is quoted nowhere.
            headers = HTTPHeaderDict(
                {k: redact.guarded(v) for k in HEADERS_READ if (v := response.headers.get(k))}
            )
            texts = classify_response(
                endpoint,
                response.status_code,
                _redacted_body(redact, response.content),
                headers,  # looked up in any case, as the answer's own are
                records,
            )
            if _meaning(texts) == _meaning(answer):
                answer = texts
        failures = tuple(
            attrs.evolve(
                f, message=redact.guarded(f.message), field=f.field and redact.guarded(f.field)
            )
            for f in answer.failures
        )
        return attrs.evolve(
            answer, reason=answer.reason and redact.guarded(answer.reason), failures=failures
        )

    def _post_watched(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        call: Call,
        budget: float | None,
        counted_once: Callable[[], bool],
    ) -> Response:
        """``HttpSession.post`` on a thread of its own, abandoned once the call's deadline
        passes.

        A request's timeouts are fixed when it starts, and a deadline that moves (SIGTERM
        starting the forwarder's shutdown clock) may pass long before they run out. The
        thread ends on its own within those timeouts; its answer, if any, is then ignored:
        the records were reported FAILED and are sent again later, as after a timeout.

        A caller's ``wait`` that is a ``WaitWhileOut`` is kept busy while the request is out,
        instead of this thread sleeping on the answer, and told the answer. Other waits are
        not called here.
        """
        answer: concurrent.futures.Future[Response] = concurrent.futures.Future()
        timeout, total = self._timeout(call, budget)

        def post() -> None:
            try:
                answer.set_result(self._http.post(url, body, headers, timeout, total, counted_once))
            except BaseException as exc:  # whatever ends the thread must end the wait too
                answer.set_exception(exc)

        busy = call.busy_while_out
        started = time.monotonic()
        threading.Thread(target=post, name="mixpanel-core-request", daemon=True).start()
        while True:
            if busy is None:
                done, _ = concurrent.futures.wait([answer], WATCH_INTERVAL)
            else:
                began = time.monotonic()
                busy.while_request_out(WATCH_INTERVAL)
                # A wait that returned at once (its own deadline passed) must not spin.
                left = WATCH_INTERVAL - (time.monotonic() - began)
                done, _ = concurrent.futures.wait([answer], max(0.0, left))
            if done:
                if busy is not None:
                    error = answer.exception()
                    busy.request_answered(answer.result() if error is None else error)
                return answer.result()
            if call.past_deadline():
                raise _AbandonedError(
                    f"no answer {time.monotonic() - started:.1f}s after the request was started, "
                    "when the deadline passed: abandoned"
                )

    def _timeout(
        self, call: Call, budget: float | None = None
    ) -> tuple[tuple[float, float], float]:
        """The options' ``(connect, read)`` timeouts, and the most the whole attempt may take:
        ``request_ceiling`` of them (a server trickling its answer is cut off there), each
        clamped to the time left before the deadline and, for a retry, of the ``budget``."""
        connect, read = self._options.timeout
        total = request_ceiling(connect, read)
        left = budget
        deadline = call.deadline
        if deadline is not None:
            before = deadline - time.monotonic()
            left = before if left is None else min(left, before)
        if left is not None:
            left = max(0.01, left)
            connect, read, total = min(connect, left), min(read, left), min(total, left)
        return (connect, read), total


_EXAMINED_BYTES = 4096
"""How much of a body ``_redacted_body`` looks through for a credential it cannot replace:
twice what a reason quotes of a page (2,000 bytes), so a secret across that cut is seen."""


def _redacted_body(redact: Redactor, body: bytes) -> bytes:
    """``body`` with the credentials it spells replaced, or withheld whole if what a reason
    may quote of it still gives one away."""
    said = redact(body.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    if redact.spells_one(said[:_EXAMINED_BYTES]):
        return WITHHELD.encode()
    return said


def _meaning(answer: Classification) -> tuple[object, ...]:
    """What an answer says of the records, its texts aside."""
    return (
        answer.verdict,
        answer.http_status,
        answer.retry_after,
        answer.maybe_received,
        tuple((f.index, f.insert_id) for f in answer.failures),
    )
