"""A local server that plays Mixpanel (or a proxy) over real sockets, answer by answer.

For the answers the emulator cannot be asked for: it reads each request whole, keeps it, and
writes the raw answer the test scripted for it. The ``scripted`` fixture (conftest) starts
them and stops them after the test.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Callable

Answer = Callable[[socket.socket], None]


def raw(status: str, body: bytes = b"", *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def answer(data: bytes, *, reset: bool = False) -> Answer:
    """Writes ``data``; with ``reset``, then resets the connection (RST, not FIN)."""

    def write(sock: socket.socket) -> None:
        sock.sendall(data)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Closed here: socketserver would first shut it down for writing, a FIN, which
            # the client reads as an answer cut short (IncompleteRead), not as a reset.
            sock.close()
            raise ConnectionAbortedError  # ends the handler

    return write


class ScriptedServer:
    """Answers the n-th request with ``answers[n]`` (the last one again once they run out)."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.requests: list[tuple[bytes, bytes]] = []
        """``(head, body)`` of each request, as received."""
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(5)
                try:
                    while server._serve_one(sock):
                        pass
                except (OSError, ValueError):
                    pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    def _serve_one(self, sock: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += sock.recv(65536)
        self.requests.append((head, body))
        self.answers[min(len(self.requests), len(self.answers)) - 1](sock)
        return True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
