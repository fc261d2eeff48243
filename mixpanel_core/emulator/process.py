"""``EmulatorProcess``: the emulator in a separate OS process, so benchmarks do not share the GIL
with the client under test."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

from mixpanel_core.emulator.command import READY_PREFIX, config_to_args
from mixpanel_core.emulator.config import EmulatorConfig, EmulatorError
from mixpanel_core.emulator.running import RunningEmulator


class EmulatorProcess(RunningEmulator):
    """Runs ``python -m mixpanel_core.emulator`` as a child; same arguments as ``Emulator``.

    A subprocess (not multiprocessing) so that starting it never re-imports the caller's
    ``__main__``, and secrets reach it through the environment, not the command line.
    """

    def _configure(self, config: EmulatorConfig) -> None:
        super()._configure(config)
        self._process: subprocess.Popen[str] | None = None
        self._base_url: str | None = None

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        """Start the child and wait until its port accepts connections; returns self."""
        if self._process is not None:
            raise EmulatorError(f"the emulator process is already running at {self._base_url}")
        options, environment = config_to_args(self.config)
        process = subprocess.Popen(
            [sys.executable, "-m", "mixpanel_core.emulator", *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **environment},
        )
        self._process = process
        try:
            assert process.stdout is not None  # guaranteed by stdout=PIPE
            line = _read_line(process.stdout, timeout)
            if not line.startswith(READY_PREFIX):
                raise EmulatorError(
                    f"the emulator process did not start (exit code {process.poll()});"
                    " its stderr says why"
                )
            self._base_url = line[len(READY_PREFIX) :].strip()
            _wait_until_accepting(self._base_url, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the child to stop (SIGTERM), killing it if it does not within ``timeout``."""
        process = self._process
        if process is None:
            return
        self._close_client()
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._process = None

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the child's emulator."""
        if self._base_url is None or self._process is None:
            raise EmulatorError("the emulator process is not running: call start() first")
        return self._base_url

    def _admin(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        return self.client._admin(method, path, query, body)


def _read_line(stream: IO[str], timeout: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise EmulatorError(f"the emulator process printed nothing within {timeout}s")
    return stream.readline()


def _wait_until_accepting(base_url: str, timeout: float) -> None:
    host, _, port = base_url.removeprefix("http://").rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise EmulatorError(f"the emulator at {base_url} does not accept: {exc}") from exc
            time.sleep(0.02)
