"""What counts as Mixpanel's success, which TLS failures are retried, and the lock after fork().

Over real sockets: a local HTTP server that answers 200 with pages Mixpanel never sends, and a
local TLS server that cuts the first handshake short.
"""

from __future__ import annotations

import http.server
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trustme
import urllib3.exceptions
from urllib3.util.ssl_match_hostname import CertificateError

from mixpanel_core.compat import MixpanelException
from mixpanel_core.compat_consumers import Consumer
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient, Verdict
from mixpanel_core.ingestion.classify import classify_response
from mixpanel_core.ingestion.http import HttpSession
from mixpanel_core.ingestion.session_errors import tls_failure_is_permanent
from mixpanel_core.messages import Endpoint
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, event, import_event, settings_for

# Waits of 10-20 ms within 0.3 s: several attempts, and a test that stays fast.
RETRYING = attrs.evolve(FAST, backoff_base=0.02, backoff_cap=0.04, retry_budget=0.3)

TRACK_OK = b'{"status": 1, "error": null}'
IMPORT_OK = b'{"code": 200, "num_records_imported": 1, "status": "OK"}'
HTML = b"<html>\n<body>  <h1>Service temporarily unavailable</h1>\n</body></html>"


# -- classification of 2xx answers --------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body", "verdict"),
    [
        ("track", TRACK_OK, Verdict.ACCEPTED),
        ("engage", b'{"status":1,"error":null}', Verdict.ACCEPTED),
        ("groups", b"1", Verdict.ACCEPTED),  # without verbose=1
        ("track", b'{"status": 0, "error": "bad token"}', Verdict.REJECTED),
        ("track", b"0", Verdict.REJECTED),
        ("track", HTML, Verdict.RETRY),
        ("track", b"", Verdict.RETRY),
        ("track", b"null", Verdict.RETRY),
        ("track", b"{}", Verdict.RETRY),
        ("track", b'{"status": true}', Verdict.RETRY),
        ("track", b'{"status": "OK"}', Verdict.RETRY),  # /import's shape, not /track's
        ("import", IMPORT_OK, Verdict.ACCEPTED),
        ("import", b'{"code": 200, "num_records_imported": 1, "status": 1}', Verdict.ACCEPTED),
        ("import", b"1", Verdict.RETRY),
        ("import", b"null", Verdict.RETRY),
        ("import", HTML, Verdict.RETRY),
    ],
)
def test_a_2xx_counts_as_accepted_only_with_the_endpoints_success_body(
    endpoint: str, body: bytes, verdict: Verdict
) -> None:
    assert classify_response(endpoint, 200, body, {}, 1).verdict is verdict


def test_a_2xx_without_the_success_body_quotes_the_start_of_it() -> None:
    page = b"<html>" + b"x" * 1000 + b"</html>"
    answer = classify_response("track", 200, page, {"Retry-After": "4"})
    assert (
        answer.reason == f"HTTP 200 without Mixpanel's success answer: body '<html>{'x' * 194}...'"
    )
    assert answer.retry_after == 4.0  # a maintenance page's Retry-After is honoured
    empty = classify_response("track", 204, b"", {})
    assert empty.reason == "HTTP 204 without Mixpanel's success answer: empty body"


def test_an_import_that_counts_fewer_records_than_sent_is_failed_not_accepted() -> None:
    body = b'{"code": 200, "num_records_imported": 2, "status": "OK"}'
    answer = classify_response("import", 200, body, {}, 3)
    assert answer.verdict is Verdict.FAILED
    assert answer.reason is not None
    assert "imported 2 of 3 records" in answer.reason
    assert classify_response("import", 200, body, {}, 2).verdict is Verdict.ACCEPTED
    assert classify_response("import", 200, body, {}).verdict is Verdict.ACCEPTED  # no count


def test_an_import_2xx_naming_failed_records_is_partial() -> None:
    body = (
        b'{"code": 200, "status": "OK", "num_records_imported": 1, "failed_records": '
        b'[{"index": 1, "insert_id": "b", "field": "properties.time", "message": "too old"}]}'
    )
    answer = classify_response("import", 200, body, {}, 2)
    assert answer.verdict is Verdict.PARTIAL
    assert [(f.index, f.field) for f in answer.failures] == [(1, "properties.time")]


# -- a local HTTP server that answers what it is told -------------------------------------


@attrs.define
class Answering:
    """A local HTTP server: ``answers`` are served in turn (the last one repeats)."""

    server: http.server.ThreadingHTTPServer
    answers: list[tuple[int, bytes]]
    bodies: list[bytes] = attrs.field(factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def next_answer(self, body: bytes) -> tuple[int, bytes]:
        self.bodies.append(body)
        return self.answers[min(len(self.bodies), len(self.answers)) - 1]


@pytest.fixture
def answering() -> Iterator[Answering]:
    state: list[Answering] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            status, body = state[0].next_answer(
                self.rfile.read(int(self.headers["Content-Length"]))
            )
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.append(Answering(server, [(200, TRACK_OK)]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state[0]
    server.shutdown()
    server.server_close()
    thread.join()


def send_one(url: str, endpoint: Endpoint = "track", **settings: Any) -> DeliveryReport:
    client = IngestionClient(MixpanelSettings(api_host=url, token=TOKEN, **settings), RETRYING)
    message = import_event() if endpoint == "import" else event()
    try:
        return client.send_batch(endpoint, [message]).reports[0]
    finally:
        client.close()


@pytest.mark.integration
@pytest.mark.parametrize("body", [HTML, b"", b"null"], ids=["html", "empty", "null"])
@pytest.mark.parametrize("endpoint", ["track", "import"])
def test_a_200_that_is_not_mixpanels_answer_is_retried_then_failed(
    answering: Answering, body: bytes, endpoint: Endpoint
) -> None:
    answering.answers = [(200, body)]
    report = send_one(answering.url, endpoint)
    assert report.status is DeliveryStatus.FAILED
    assert report.attempts >= 2
    assert report.attempts == len(answering.bodies)
    assert set(answering.bodies) == {answering.bodies[0]}  # identical resends: same $insert_id
    assert report.reason is not None
    assert report.reason.startswith(f"gave up after {report.attempts} attempt(s)")
    quoted = " ".join(body.decode().split())[:40]
    assert (f"body '{quoted}" if quoted else "empty body") in report.reason


@pytest.mark.integration
@pytest.mark.parametrize(("endpoint", "success"), [("track", TRACK_OK), ("import", IMPORT_OK)])
def test_mixpanels_success_body_is_accepted_even_after_a_stray_page(
    answering: Answering, endpoint: Endpoint, success: bytes
) -> None:
    answering.answers = [(200, HTML), (200, success)]
    report = send_one(answering.url, endpoint)
    assert (report.status, report.attempts, report.http_status) == (
        DeliveryStatus.ACCEPTED,
        2,
        200,
    )


@pytest.mark.integration
def test_the_compat_consumer_raises_on_a_200_page_as_the_official_sdk_does(
    answering: Answering,
) -> None:
    """The official Consumer raises unless Mixpanel says status 1; so does ours."""
    answering.answers = [(200, HTML)]
    consumer = Consumer(api_host=answering.url, retry_limit=0)
    with pytest.raises(MixpanelException, match="Service temporarily unavailable"):
        consumer.send("events", event().json().decode())


@pytest.mark.integration
def test_import_without_strict_that_drops_an_invalid_record_is_not_reported_accepted(
    mixpanel_emulator: Emulator,
) -> None:
    """Without strict=1 the emulator, like Mixpanel, imports the valid records, drops the
    invalid one silently and counts one fewer: no record may be reported accepted."""
    client = IngestionClient(settings_for(mixpanel_emulator), attrs.evolve(FAST, strict=False))
    result = client.send_batch("import", [import_event(), import_event(time=1000)])
    assert [(r.status, r.attempts) for r in result.reports] == [(DeliveryStatus.FAILED, 1)] * 2
    assert result.reports[0].reason is not None
    assert "imported 1 of 2 records" in result.reports[0].reason
    assert client.send_batch("import", [import_event(), import_event()]).ok


# -- TLS: a handshake cut short is retried, a refused certificate is not --------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 from a throwaway authority that nothing trusts."""
    leaf = trustme.CA().issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


class HandshakeCutter(http.server.ThreadingHTTPServer):
    """An HTTPS server that reads the first ``cuts`` ClientHellos and closes the connection,
    as a restarting load balancer does; later connections get a handshake and Mixpanel's 200."""

    def __init__(self, certificate: tuple[Path, Path], cuts: int) -> None:
        super().__init__(("127.0.0.1", 0), _TrackOk)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*certificate)
        self.cuts = cuts
        self.connections = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        self.connections += 1
        if self.connections <= self.cuts:
            # Read the ClientHello first: closing with unread data would send a RST, which is
            # a plain connection reset, not the EOF in mid-handshake this server stands for.
            sock.recv(65536)
            sock.close()
            raise OSError("handshake cut short on purpose")  # the server skips this one
        return self.context.wrap_socket(sock, server_side=True), address


class _TrackOk(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(TRACK_OK)))
        self.end_headers()
        self.wfile.write(TRACK_OK)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[HandshakeCutter]:
    server = HandshakeCutter(certificate, cuts=1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_a_handshake_the_peer_cuts_short_is_retried(tls_server: HandshakeCutter) -> None:
    report = send_one(f"https://127.0.0.1:{tls_server.server_port}", verify_tls=False)
    assert (report.status, report.attempts) == (DeliveryStatus.ACCEPTED, 2)
    assert tls_server.connections == 2


@pytest.mark.integration
def test_a_certificate_that_fails_verification_is_not_retried(
    tls_server: HandshakeCutter,
) -> None:
    tls_server.cuts = 0
    report = send_one(f"https://127.0.0.1:{tls_server.server_port}", verify_tls=True)
    assert (report.status, report.attempts) == (DeliveryStatus.FAILED, 1)
    assert report.reason is not None
    assert report.reason.startswith("TLS failure talking to https://127.0.0.1:")
    assert "CERTIFICATE_VERIFY_FAILED" in report.reason


@pytest.mark.integration
def test_a_tls_failure_names_the_endpoint_without_its_query(tls_server: HandshakeCutter) -> None:
    # A query in urls.NAME is sent as written and may hold a credential: never quoted.
    tls_server.cuts = 0
    base = f"https://127.0.0.1:{tls_server.server_port}"
    report = send_one(base, verify_tls=True, urls={"track": f"{base}/track?key=S3CRET"})
    assert report.status is DeliveryStatus.FAILED
    assert report.reason is not None
    assert report.reason.startswith(f"TLS failure talking to {base}/track?...: ")
    assert "S3CRET" not in report.reason


def _ssl_error(cls: type[ssl.SSLError], reason: str) -> ssl.SSLError:
    error = cls(1, f"[SSL: {reason}] ...")
    error.reason = reason
    return error


def _raised_from(cause: BaseException) -> urllib3.exceptions.SSLError:
    try:
        raise urllib3.exceptions.SSLError("wrapped") from cause
    except urllib3.exceptions.SSLError as exc:
        return exc


@pytest.mark.parametrize(
    ("cause", "permanent"),
    [
        (_ssl_error(ssl.SSLEOFError, "UNEXPECTED_EOF_WHILE_READING"), False),
        (_ssl_error(ssl.SSLZeroReturnError, "ZERO_RETURN"), False),
        (_ssl_error(ssl.SSLError, "DECRYPTION_FAILED_OR_BAD_RECORD_MAC"), False),
        (_ssl_error(ssl.SSLCertVerificationError, "CERTIFICATE_VERIFY_FAILED"), True),
        (CertificateError("hostname 'a' doesn't match 'b'"), True),
        (_ssl_error(ssl.SSLError, "WRONG_VERSION_NUMBER"), True),  # https:// to plain HTTP
        (_ssl_error(ssl.SSLError, "TLSV1_ALERT_PROTOCOL_VERSION"), True),
        (FileNotFoundError(2, "No such file or directory"), True),  # a CA bundle not loaded
    ],
)
def test_which_tls_failures_retrying_cannot_help(cause: Exception, permanent: bool) -> None:
    # urllib3 wraps the original as SSLError(e) in one place, raise SSLError(e) from e in another.
    assert tls_failure_is_permanent(urllib3.exceptions.SSLError(cause)) is permanent
    assert tls_failure_is_permanent(_raised_from(cause)) is permanent


def test_urllib3s_own_tls_refusals_are_permanent() -> None:
    refusal = urllib3.exceptions.SSLError('Fingerprints did not match. Expected "ab", got "cd"')
    assert tls_failure_is_permanent(refusal)


# -- fork() ---------------------------------------------------------------------------------


def test_a_child_forked_while_another_thread_holds_the_lock_is_not_stuck() -> None:
    """The child must open its own pool, under the session's lock: a lock some other parent
    thread held at fork() time would otherwise stay held in the child for ever."""
    if not hasattr(os, "fork"):
        pytest.fail("this project runs on Linux only: this test needs os.fork()", pytrace=False)
    session = HttpSession(1, verify_tls=False)
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with session._lock:
            holding.set()
            done.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    try:
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            code = 1
            try:
                session._route("https://api.mixpanel.com/track")
                code = 0
            finally:
                os._exit(code)
        status = _wait_for(pid, timeout=10.0)
    finally:
        done.set()
        holder.join()
    assert status == 0, "the child deadlocked on the lock held at fork() time"


def _wait_for(pid: int, timeout: float) -> int | None:
    """The child's exit code; ``None`` (and the child killed) if it is still running."""
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None
