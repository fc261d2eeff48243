"""The emulator's settings: credentials, limits and where to keep what it accepts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from mixpanel_core.api_limits import (
    MAX_BODY_BYTES,
    MAX_GROUP_RECORDS_PER_REQUEST,
    MAX_RECORDS_PER_REQUEST,
)
from mixpanel_core.errors import MixpanelCoreError

DEFAULT_TOKEN = "emulator-token"
DEFAULT_API_SECRET = "emulator-secret"
DEFAULT_SERVICE_ACCOUNT = ("sa-user", "sa-secret")
DEFAULT_PROJECT_ID = "12345"
DEFAULT_MAX_BODY_BYTES = MAX_BODY_BYTES
DEFAULT_MAX_RECORDS = MAX_RECORDS_PER_REQUEST
DEFAULT_MAX_GROUP_RECORDS = MAX_GROUP_RECORDS_PER_REQUEST

ENDPOINTS = ("track", "engage", "groups", "import")
# A day: longer than anything waits on a loopback test server, and within what a socket
# timeout can hold (1e12 seconds overflows it).
MAX_IDLE_TIMEOUT = 86400


class EmulatorError(MixpanelCoreError):
    """The emulator could not start, or a control request to it failed."""


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything an emulator needs to start; shared by in-process and separate-process emulators.

    ``keep_records=False`` keeps only counters and dedupe keys, for long benchmarks whose
    accepted records would not fit in memory. ``idle_timeout`` closes a connection on which
    nothing arrives for that many seconds (None: never), as a real server closes idle
    keep-alive connections.
    """

    host: str = "127.0.0.1"
    port: int = 0
    tokens: tuple[str, ...] = (DEFAULT_TOKEN,)
    # repr=False: a config printed in a log or a test failure must not show the secrets.
    api_secret: str | None = field(default=DEFAULT_API_SECRET, repr=False)
    service_account: tuple[str, str] | None = field(default=DEFAULT_SERVICE_ACCOUNT, repr=False)
    project_id: str = DEFAULT_PROJECT_ID
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    record_file: Path | None = None
    max_records: int = DEFAULT_MAX_RECORDS
    max_group_records: int = DEFAULT_MAX_GROUP_RECORDS
    keep_records: bool = True
    idle_timeout: float | None = None
    token_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.tokens:
            raise EmulatorError("tokens is empty: configure at least one project token")
        if self.max_body_bytes <= 0 or self.max_records <= 0 or self.max_group_records <= 0:
            raise EmulatorError("max_body_bytes, max_records and max_group_records must be > 0")
        if self.idle_timeout is not None and not 0 < self.idle_timeout <= MAX_IDLE_TIMEOUT:
            raise EmulatorError(
                f"idle_timeout must be seconds above 0 and at most {MAX_IDLE_TIMEOUT} (a day),"
                " or None for never"
            )
        # Built once so the per-record token check is a set lookup.
        object.__setattr__(self, "token_set", frozenset(self.tokens))

    def records_limit(self, endpoint: str) -> int:
        """How many records one request to ``endpoint`` may carry."""
        return self.max_group_records if endpoint == "groups" else self.max_records


class EmulatorArguments:
    """The constructor ``Emulator`` and ``EmulatorProcess`` share: each setting as an argument,
    gathered into ``self.config``; ``from_config`` starts from a ready ``EmulatorConfig``."""

    config: EmulatorConfig

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        api_secret: str | None = DEFAULT_API_SECRET,
        service_account: tuple[str, str] | None = DEFAULT_SERVICE_ACCOUNT,
        project_id: str | int = DEFAULT_PROJECT_ID,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        record_file: str | Path | None = None,
        *,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_group_records: int = DEFAULT_MAX_GROUP_RECORDS,
        keep_records: bool = True,
        idle_timeout: float | None = None,
    ) -> None:
        self._configure(
            EmulatorConfig(
                host=host,
                port=port,
                tokens=tuple(tokens),
                api_secret=api_secret,
                service_account=service_account,
                project_id=str(project_id),
                max_body_bytes=max_body_bytes,
                record_file=Path(record_file) if record_file is not None else None,
                max_records=max_records,
                max_group_records=max_group_records,
                keep_records=keep_records,
                idle_timeout=idle_timeout,
            )
        )

    @classmethod
    def from_config(cls, config: EmulatorConfig) -> Self:
        """An instance with exactly ``config`` (as the CLI builds it)."""
        instance = cls.__new__(cls)
        instance._configure(config)
        return instance

    def _configure(self, config: EmulatorConfig) -> None:
        """Set up from ``config``; subclasses extend this and call it first."""
        self.config = config
