"""The inspection and fault methods shared by ``Emulator``, ``EmulatorProcess`` and
``EmulatorClient``, written once over the ``/_emulator/`` routes."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, cast

from mixpanel_core.emulator.config import EmulatorError


class EmulatorControls(ABC):
    """Inspect and steer an emulator; subclasses say how a control request reaches it."""

    @abstractmethod
    def _admin(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one ``/_emulator/`` request; return its decoded JSON or raise EmulatorError."""

    def records(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Accepted records of ``endpoint`` (track, engage, groups, import; None: all), in order."""
        return cast(list[dict[str, Any]], self._admin("GET", "/_emulator/records", _on(endpoint)))

    def insert_ids(self, endpoint: str | None = None) -> list[str]:
        """``$insert_id`` of every accepted event, in arrival order, duplicates included."""
        return cast(list[str], self._admin("GET", "/_emulator/insert_ids", _on(endpoint)))

    def stats(self) -> dict[str, Any]:
        """Requests by endpoint and status, records accepted/rejected, unique/duplicate events,
        and TCP connections accepted (since start or the last ``reset``)."""
        return cast(dict[str, Any], self._admin("GET", "/_emulator/stats"))

    def faults(self) -> dict[str, Any]:
        """The fault settings now in force, including how many requests are stalled."""
        return cast(dict[str, Any], self._admin("GET", "/_emulator/faults"))

    def wait_for_records(
        self, count: int, endpoint: str | None = None, *, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Poll until at least ``count`` records were accepted; raise EmulatorError on timeout."""
        deadline = time.monotonic() + timeout
        # As records() reads it: a leading "/" is ignored, an unknown name is an EmulatorError.
        name = endpoint.strip("/") if endpoint else None
        while True:
            accepted = self.stats()["accepted"]
            if name is not None and name not in accepted:
                raise EmulatorError(f"unknown endpoint {endpoint!r}: use one of {list(accepted)}")
            seen = accepted[name] if name else sum(accepted.values())
            if seen >= count:
                return self.records(endpoint)
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"waited {timeout}s for {count} records on {endpoint or 'any endpoint'};"
                    f" only {seen} arrived"
                )
            time.sleep(0.01)

    def fail_next(
        self,
        n: int,
        status: int = 500,
        *,
        endpoints: Iterable[str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``n`` requests (to ``endpoints`` only, if given) with ``status``."""
        self._fault(
            "fail_next",
            n=n,
            status=status,
            endpoints=_names(endpoints),
            retry_after=retry_after,
        )

    def fail_fraction(
        self,
        p: float,
        statuses: Iterable[int] = (429, 500),
        *,
        seed: int | None = None,
        endpoints: Iterable[str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Fail each request with probability ``p``, status drawn from ``statuses``; p=0: off."""
        self._fault(
            "fail_fraction",
            p=p,
            statuses=list(statuses),
            seed=seed,
            endpoints=_names(endpoints),
            retry_after=retry_after,
        )

    def set_latency(self, seconds: float) -> None:
        """Delay every ingestion request by ``seconds``; 0 turns it off."""
        self._fault("latency", seconds=seconds)

    def drop_next(
        self, n: int, *, endpoints: Iterable[str] | None = None, after_applying: bool = False
    ) -> None:
        """Close the connection of the next ``n`` requests without answering; with
        ``after_applying``, once each is handled as usual (its records kept)."""
        self._fault("drop_next", n=n, endpoints=_names(endpoints), after_applying=after_applying)

    def stall(self) -> None:
        """Hold every ingestion request, before its body is read, until ``release``."""
        self._fault("stall")

    def release(self) -> None:
        """Let stalled requests through."""
        self._fault("release")

    def clear_faults(self) -> None:
        """Remove every fault and release stalled requests; records and stats are kept."""
        self._fault("clear")

    def reset(self) -> None:
        """Forget records and stats and clear every fault."""
        self._admin("POST", "/_emulator/reset")

    def _fault(self, action: str, **arguments: Any) -> None:
        self._admin("POST", "/_emulator/faults", body={"action": action, **arguments})


def _on(endpoint: str | None) -> dict[str, str]:
    return {} if endpoint is None else {"endpoint": endpoint}


def _names(endpoints: Iterable[str] | None) -> list[str] | None:
    return None if endpoints is None else list(endpoints)
