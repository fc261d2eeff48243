"""A server that accepts every ingestion request without looking at it, in its own process.

``bench_http.py`` runs the buffered comparison against it once more, to show where the ratio is
bounded: with no work on the server's side (no parsing, validation or storage), what is left is
each client's own cost per event. It answers ``{"status": 1}`` to every POST and counts records
by their ``$insert_id`` key (raw in our bodies, percent-encoded in the official client's), so the
benchmark can still check that nothing was lost.
"""

from __future__ import annotations

import multiprocessing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.sharedctypes import Synchronized
from types import TracebackType

_INSERT_IDS = (b'"$insert_id"', b"%22%24insert_id%22")
_ACCEPTED = b'{"error":null,"status":1}'


def _serve(port: Synchronized[int], records: Synchronized[int]) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            found = sum(body.count(key) for key in _INSERT_IDS)
            with records.get_lock():
                records.value += found
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(_ACCEPTED)))
            self.end_headers()
            self.wfile.write(_ACCEPTED)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port.value = server.server_address[1]
    server.serve_forever()


class NullServer:
    """``with NullServer() as server:`` gives ``server.base_url`` and ``server.records``."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._port = context.Value("i", 0)
        self._records = context.Value("q", 0)
        self._process = context.Process(target=_serve, args=(self._port, self._records))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port.value}"

    @property
    def records(self) -> int:
        """Records received so far (each request is counted before it is answered)."""
        return int(self._records.value)

    def __enter__(self) -> NullServer:
        self._process.start()
        while not self._port.value:
            if not self._process.is_alive():
                raise RuntimeError("the null server exited before it listened")
            self._process.join(0.01)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._process.terminate()
        self._process.join()
