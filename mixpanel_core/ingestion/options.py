"""``HttpOptions``: how the ingestion client talks to Mixpanel (timeouts, retries, batch limits).

Every HTTP transport and the forwarder read these keys from their TOML table with
``mixpanel_core.schema.read``, so the same key means the same thing everywhere.
"""

from __future__ import annotations

from typing import Literal

import attrs

from mixpanel_core.api_limits import (
    LARGEST_BODY_BYTES,
    MAX_BODY_BYTES,
    MAX_GROUP_RECORDS_PER_REQUEST,
    MAX_RECORDS_PER_REQUEST,
    MIB,
)
from mixpanel_core.ingestion.retry import RetryPolicy
from mixpanel_core.schema import check_seconds, setting

__all__ = ["MAX_GROUP_RECORDS_PER_REQUEST", "MAX_RECORDS_PER_REQUEST", "MIB", "HttpOptions"]


# Not slotted, so a transport can combine option classes by inheritance.
MAX_POOL_SIZE = 1000
"""Most connections kept per host (``pool_size``)."""


@attrs.frozen(slots=False)
class HttpOptions:
    """Timeouts, compression, retry schedule and batch limits of requests to Mixpanel."""

    connect_timeout: float = setting(
        5.0, doc="Seconds to wait for a TCP/TLS connection. Never unbounded."
    )
    read_timeout: float = setting(
        30.0,
        doc="Seconds to wait for each read of Mixpanel's answer. Never unbounded; a whole "
        "attempt ends within `connect_timeout` + twice `read_timeout`, but for the host "
        "name's lookup on a new connection (see [Ingestion](../ingestion.md)).",
    )
    gzip: bool = setting(
        False, doc="Compress request bodies (`Content-Encoding: gzip`); limits stay uncompressed."
    )
    retry_budget: float = setting(
        60.0,
        doc="Seconds one request may spend being retried, counted from its own first attempt "
        "(the halves of a request split on 413 share it); a retry is cut off when it runs out, "
        "and its records are reported FAILED.",
    )
    max_retries: int | None = setting(
        None,
        doc="Retries of one request at most, within `retry_budget` (unset: as many as fit in "
        "it; 0: none).",
    )
    backoff_base: float = setting(
        0.5,
        doc="First wait (seconds) after a 5xx, timeout or connection error; doubles. At most "
        "`backoff_cap`.",
    )
    backoff_cap: float = setting(30.0, doc="Longest wait (seconds) after a 5xx or network error.")
    rate_limit_base: float = setting(
        2.0,
        doc="First wait (seconds) after a 429, as Mixpanel recommends; doubles. At most "
        "`rate_limit_cap`.",
    )
    rate_limit_cap: float = setting(60.0, doc="Longest wait (seconds) after a 429.")
    import_format: Literal["json", "ndjson"] = setting(
        "json", doc="Body of `/import` requests: a JSON array or newline-delimited JSON."
    )
    strict: bool = setting(
        True, doc="Send `strict=1` to `/import` so Mixpanel names each invalid record."
    )
    max_batch_bytes: int = setting(
        MAX_BODY_BYTES,
        doc="Uncompressed body budget of one request, in bytes (Mixpanel: 2 MiB; at most "
        "10,000,000, the most Mixpanel documents, for `/import`).",
    )
    max_batch_records: int = setting(
        MAX_RECORDS_PER_REQUEST,
        doc="Records per request, at most 2000 (`/groups` is always kept to 200).",
    )
    pool_size: int = setting(
        10,
        doc="Connections kept open per host (keep-alive reuse), shared by the threads that send. "
        "`http` sends in its callers' threads: give it at least as many as the threads that "
        "send at once, or each request beyond them opens a connection and closes it after "
        '(urllib3 logs a warning for each: "Connection pool is full, discarding connection").',
    )

    def __attrs_post_init__(self) -> None:
        check_seconds("connect_timeout", self.connect_timeout, zero=False)
        check_seconds("read_timeout", self.read_timeout, zero=False)
        for name in (
            "retry_budget",
            "backoff_base",
            "backoff_cap",
            "rate_limit_base",
            "rate_limit_cap",
        ):
            check_seconds(name, getattr(self, name))
        if not 1 <= self.max_batch_bytes <= LARGEST_BODY_BYTES:
            # Larger, every full batch was refused 413 and sent again in halves.
            raise ValueError(
                f"max_batch_bytes: must be between 1 and {LARGEST_BODY_BYTES} (the most Mixpanel "
                f"documents, for /import), not {self.max_batch_bytes!r}"
            )
        for base, cap in (("backoff_base", "backoff_cap"), ("rate_limit_base", "rate_limit_cap")):
            if getattr(self, base) > getattr(self, cap):
                # The first wait would be cut to the cap, and so would every one after it.
                raise ValueError(
                    f"{base}: must not be greater than {cap} ({getattr(self, base)!r} > "
                    f"{getattr(self, cap)!r}); lower it, or raise {cap}"
                )
        # urllib3 fills a queue of that many slots when the pool is made: 10**9 froze the
        # first request. More connections than threads are never used anyway.
        if not 1 <= self.pool_size <= MAX_POOL_SIZE:
            raise ValueError(
                f"pool_size: must be between 1 and {MAX_POOL_SIZE}, not {self.pool_size!r}"
            )
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError(f"max_retries: must be 0 or more, not {self.max_retries!r}")
        if not 1 <= self.max_batch_records <= MAX_RECORDS_PER_REQUEST:
            raise ValueError(
                f"max_batch_records: must be between 1 and {MAX_RECORDS_PER_REQUEST}, "
                f"not {self.max_batch_records!r}"
            )

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` as requests takes it."""
        return (self.connect_timeout, self.read_timeout)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The backoff schedule these options describe."""
        return RetryPolicy(
            base=self.backoff_base,
            cap=self.backoff_cap,
            rate_limit_base=self.rate_limit_base,
            rate_limit_cap=self.rate_limit_cap,
            budget=self.retry_budget,
            max_retries=self.max_retries,
        )
