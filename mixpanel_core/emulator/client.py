"""``EmulatorClient``: the control API of any running emulator, over HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import requests

from mixpanel_core import wire
from mixpanel_core.emulator.config import EmulatorError
from mixpanel_core.emulator.controls import EmulatorControls


class EmulatorClient(EmulatorControls):
    """Inspect and steer an emulator at ``base_url``, in this process or another one."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def _admin(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=dict(query or {}),
                data=orjson.dumps(body) if body is not None else None,
                headers={"Content-Type": "application/json"},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise EmulatorError(f"cannot reach the emulator at {self.base_url}: {exc}") from exc
        if response.status_code != 200:
            raise EmulatorError(
                f"{method} {path} failed with {response.status_code}: {response.text}"
            )
        return wire.loads(response.content)
