"""The emulator's settings: credentials, limits and where to keep what it accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mixpanel_core.errors import MixpanelCoreError

DEFAULT_TOKEN = "emulator-token"
DEFAULT_API_SECRET = "emulator-secret"
DEFAULT_SERVICE_ACCOUNT = ("sa-user", "sa-secret")
DEFAULT_PROJECT_ID = "12345"
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_RECORDS = 2000
DEFAULT_MAX_GROUP_RECORDS = 200

ENDPOINTS = ("track", "engage", "groups", "import")


class EmulatorError(MixpanelCoreError):
    """The emulator could not start, or a control request to it failed."""


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything an emulator needs to start; shared by in-process and separate-process emulators.

    ``keep_records=False`` keeps only counters and dedupe keys, for long benchmarks whose
    accepted records would not fit in memory.
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
    token_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.tokens:
            raise EmulatorError("tokens is empty: configure at least one project token")
        if self.max_body_bytes <= 0 or self.max_records <= 0 or self.max_group_records <= 0:
            raise EmulatorError("max_body_bytes, max_records and max_group_records must be > 0")
        # Built once so the per-record token check is a set lookup.
        object.__setattr__(self, "token_set", frozenset(self.tokens))

    def records_limit(self, endpoint: str) -> int:
        """How many records one request to ``endpoint`` may carry."""
        return self.max_group_records if endpoint == "groups" else self.max_records
