"""kafka-python's DEBUG log never shows SASL credentials nor raw frames, and shows the rest.

A SASL_PLAINTEXT session runs for real: a small proxy in front of a broker of the test's own
(which gives the proxy's address in its metadata, so every connection goes through it) plays
the SASL part of a broker that has SASL: it answers the handshake and the PLAIN
authentication, remembers what the client sent, and passes every other request through.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.log_filter import CHATTY_LOGGERS
from mixpanel_core.testing import memory_client
from transports.kafka import KafkaTransport

pytestmark = pytest.mark.integration

PASSWORD = "kafka-PLAIN-pw-7q"
TOPIC = "secured"
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


class SaslProxy:
    """Accepts any PLAIN credentials; keeps the authentication bytes it was sent."""

    def __init__(self) -> None:
        self.broker = ("127.0.0.1", 0)
        self.auth_bytes: list[bytes] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._server.getsockname()[1]}"

    def start(self, broker: EmbeddedBroker) -> None:
        self.broker = (broker.host, broker.port)
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.broker)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        try:
            while True:
                size = struct.unpack(">i", _read(client, 4))[0]
                body = _read(client, size)
                api_key, version, correlation = struct.unpack(">hhi", body[:8])
                if api_key == SASL_HANDSHAKE:
                    answer = struct.pack(">ihih5s", correlation, 0, 1, 5, b"PLAIN")
                elif api_key == SASL_AUTHENTICATE:
                    self.auth_bytes.append(body)
                    answer = self._authenticated(correlation, version)
                else:
                    upstream.sendall(struct.pack(">i", size) + body)
                    continue
                client.sendall(struct.pack(">i", len(answer)) + answer)
        except (ConnectionError, OSError):
            pass
        finally:
            upstream.close()
            client.close()

    @staticmethod
    def _authenticated(correlation: int, version: int) -> bytes:
        if version >= 2:  # flexible versions: tagged fields and compact strings
            return struct.pack(">ibhbbqb", correlation, 0, 0, 0, 1, 0, 0)
        lifetime = struct.pack(">q", 0) if version >= 1 else b""
        return struct.pack(">ihhi", correlation, 0, -1, 0) + lifetime

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def sasl_proxy() -> Iterator[SaslProxy]:
    """The proxy's address is the broker's advertised address, so it is chosen first."""
    proxy = SaslProxy()
    with EmbeddedBroker(advertised=proxy.address) as broker:
        proxy.start(broker)
        create_topic(proxy.address, TOPIC, 1)  # through the proxy, without SASL
        yield proxy
        proxy.close()


def test_a_sasl_session_logged_at_debug_shows_no_password_and_the_other_requests(
    sasl_proxy: SaslProxy, caplog: pytest.LogCaptureFixture
) -> None:
    producer = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "app",
        "sasl_plain_password": PASSWORD,
    }
    client, memory = memory_client("tok")
    client.track("user-1", "Signed up")
    with caplog.at_level(logging.DEBUG, logger="kafka"):
        transport = KafkaTransport(sasl_proxy.address, TOPIC, producer)
        transport.send(memory.messages[0])
        assert transport.flush(30) == []
        transport.close(5)
    # The session really authenticated with the password (the proxy saw it)...
    assert any(PASSWORD.encode() in sent for sent in sasl_proxy.auth_bytes)
    # ...and no log line shows it, in any form kafka-python writes it.
    text = "\n".join(record.getMessage() for record in caplog.records)
    for form in (PASSWORD, repr(PASSWORD.encode()), PASSWORD.encode().hex()):
        assert form not in text
    assert "SaslAuthenticate" not in text
    assert " Send: b'" not in text
    assert " Recv: b'" not in text
    # The loggers still tell everything else: here the produce request and its response.
    chatty = [r.getMessage() for r in caplog.records if r.name in CHATTY_LOGGERS]
    assert any("ProduceRequest" in line for line in chatty)
    assert any("ProduceResponse" in line for line in chatty)


def test_records_logged_as_kafka_python_logs_them_are_dropped_only_when_they_carry_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kafka_python()  # mixpanel-core's way in to kafka-python installs the filter
    from kafka.protocol.metadata import MetadataRequest
    from kafka.protocol.sasl import SaslAuthenticateRequest, SaslAuthenticateResponse

    connection = logging.getLogger("kafka.net.connection")
    parser = logging.getLogger("kafka.protocol.parser")
    secret = b"\x00app\x00" + PASSWORD.encode()
    with caplog.at_level(logging.DEBUG, logger="kafka"):
        # The calls of kafka/net/connection.py and kafka/protocol/parser.py, word for word.
        request = SaslAuthenticateRequest(auth_bytes=secret)
        connection.debug("%s Request %d: %s", "<conn>", 4, request)
        response = SaslAuthenticateResponse(error_code=0, auth_bytes=secret)
        connection.debug("%s: Response %d (%s ms): %s", "<conn>", 4, 1.5, response)
        parser.debug("%s Sending request %d %s", "<conn>", 4, request)
        parser.debug("%s Send: %r", "<conn>", secret)
        parser.debug("%s Recv: %r", "<conn>", secret)
        parser.debug("%s Received response %d %s", "<conn>", 4, response)
        connection.debug("%s Request %d: %s", "<conn>", 5, MetadataRequest(topics=[]))
        connection.info("%s: Connected", "<conn>")
    assert [r.getMessage() for r in caplog.records if "<conn>" in r.getMessage()] == [
        f"<conn> Request 5: {MetadataRequest(topics=[])}",
        "<conn>: Connected",
    ]
