"""``MultiprocessingQueueOptions``: the keys of a ``type = "multiprocessing_queue"`` table."""

from __future__ import annotations

import math
from typing import Literal

import attrs

from mixpanel_core.bounded_queue import WhenFull
from mixpanel_core.schema import check_seconds, setting

StartMethod = Literal["spawn", "fork", "forkserver"]


@attrs.frozen
class MultiprocessingQueueOptions:
    """How producers queue messages for the sender process, and how it is run and stopped."""

    inner: str = setting(
        doc="The transport the sender process delivers through, by its name in "
        "`[transports.NAME]` (normally a `buffered_http` one). It is built in the sender only."
    )
    start_sender: bool = setting(
        True,
        doc="Start the sender process when this transport is built (in the process that builds "
        "it first). `false`: start it yourself with `mixpanel_core.multiprocess.run_sender`.",
    )
    start_method: StartMethod = setting(
        "spawn",
        doc="How the sender process is started: `spawn`, `fork` or `forkserver`. Workers may "
        "use any start method: the frame pipe reaches children of all three.",
    )
    max_queue_messages: int = setting(
        100_000,
        doc="Messages the sender reads ahead of delivering them, counted in whole batches "
        "(`max_queue_messages / batch_size` batches, at least one). Beyond that, what waits is "
        "in the pipe (up to its capacity, 1 MiB on Linux), then producers meet `when_full`.",
    )
    batch_size: int = setting(
        500,
        doc="Messages a producer packs into one queue item; a full batch is queued at once.",
    )
    linger: float = setting(
        0.05,
        doc="Seconds a partial batch may wait in a producer before it is queued anyway.",
    )
    when_full: WhenFull = setting(
        "block",
        doc="The full-queue policy, as for `buffered_http`: `block` the producer for up to "
        "`block_timeout` seconds (then `QueueFullError`), `drop_newest` (the batch being "
        "queued, dropped by its producer) or `drop_oldest` (the batch that waited longest, "
        "dropped by the sender, which then reads on). Drops are reported DROPPED.",
    )
    block_timeout: float = setting(
        10.0,
        doc="Longest a producer waits for room to write a batch (under `drop_newest`, once "
        "its first part is written).",
    )
    fallback: str | None = setting(
        None,
        doc="A transport (by name) that takes the messages when the sender process is gone. "
        "Without one, producers raise `TransportError` and report the messages `failed`.",
    )
    check_interval: float = setting(
        0.2,
        doc="Seconds between checks that the sender process is alive; bounds how long a "
        "blocked producer waits before it notices a dead sender.",
    )
    shutdown_timeout: float = setting(
        60.0,
        doc="`close()` without a timeout waits at most this long for worker producers to "
        "close, for the sender to drain the queue and for its inner transport to close.",
    )
    forward_reports: bool = setting(
        True,
        doc="Send each delivery report from the sender back to the process that owns it, so "
        "its `mixpanel_delivered` hook sees the outcome of every message.",
    )

    def __attrs_post_init__(self) -> None:
        for name in ("max_queue_messages", "batch_size"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"{name}: must be greater than 0, not {value!r}")
        for name in ("linger", "block_timeout", "check_interval", "shutdown_timeout"):
            check_seconds(name, getattr(self, name), zero=False)

    @property
    def queue_batches(self) -> int:
        """The queue's bound in batches."""
        return max(1, math.ceil(self.max_queue_messages / self.batch_size))
