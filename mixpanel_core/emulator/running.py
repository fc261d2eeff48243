"""``RunningEmulator``: what ``Emulator`` and ``EmulatorProcess`` share once started."""

from __future__ import annotations

from abc import abstractmethod
from types import TracebackType
from typing import Self

from mixpanel_core.emulator.client import EmulatorClient
from mixpanel_core.emulator.config import EmulatorArguments, EmulatorConfig
from mixpanel_core.emulator.controls import EmulatorControls


class RunningEmulator(EmulatorArguments, EmulatorControls):
    """An emulator that is started and stopped: its HTTP control client and ``with`` use."""

    def _configure(self, config: EmulatorConfig) -> None:
        super()._configure(config)
        self._client: EmulatorClient | None = None

    @abstractmethod
    def start(self) -> Self:
        """Start serving; returns self."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving (idempotent)."""

    @property
    @abstractmethod
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running emulator."""

    @property
    def client(self) -> EmulatorClient:
        """An HTTP client of this emulator's control API."""
        if self._client is None:
            self._client = EmulatorClient(self.base_url)
        return self._client

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
