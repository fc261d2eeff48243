"""Builders shared by the command tests: a config file aimed at the emulator, input files."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from mixpanel_core.emulator import Emulator

TOKEN = "emulator-token"
FAST_RETRIES = """\
backoff_base = 0.001
backoff_cap = 0.002
rate_limit_base = 0.001
rate_limit_cap = 0.002
"""


def write_config(
    tmp_path: Path,
    emulator: Emulator,
    *,
    transport: str = "buffered_http",
    plugins: list[str] | None = None,
    extra: str = "",
    retry_budget: float = 5.0,
) -> Path:
    """A TOML file: the emulator as Mixpanel (service account for /import), one transport."""
    buffered = "linger = 0.005\nexit_timeout = 0.0\n" if transport == "buffered_http" else ""
    enabled = "" if plugins is None else f"[plugins]\nenabled = {orjson.dumps(plugins).decode()}\n"
    text = f"""\
[mixpanel]
token = "{TOKEN}"
api_host = "{emulator.base_url}"
service_account_username = "sa-user"
service_account_secret = "sa-secret"
project_id = "12345"

{enabled}
[transports.direct]
type = "{transport}"
retry_budget = {retry_budget}
{FAST_RETRIES}{buffered}
{extra}"""
    path = tmp_path / "mixpanel.toml"
    path.write_text(text)
    return path


def events(count: int, start: int = 0, **props: Any) -> list[dict[str, Any]]:
    """Import-ready events without ``$insert_id`` (the command derives them)."""
    now = time.time() - 3600
    return [
        {
            "event": "backfilled",
            "properties": {"distinct_id": f"user-{n}", "time": now - n, "n": n, **props},
        }
        for n in range(start, start + count)
    ]


def write_ndjson(path: Path, records: Iterable[object], *, compress: bool = False) -> Path:
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_json(
    path: Path, document: object, *, compress: bool = False, indent: bool = False
) -> Path:
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2 if indent else 0)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
