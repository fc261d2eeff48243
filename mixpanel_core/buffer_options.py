"""``BufferOptions``: the queue and time bounds of every buffered transport (``buffering``)."""

from __future__ import annotations

import attrs

from mixpanel_core.bounded_queue import WhenFull
from mixpanel_core.schema import check_seconds, setting

MIB = 1024 * 1024


# Not slotted, so a transport can combine option classes by inheritance.
@attrs.frozen(slots=False)
class BufferOptions:
    """How much a buffered transport may hold, what it does when full, and its time bounds."""

    max_queue_messages: int = setting(
        100_000,
        doc="Most messages queued before `when_full` applies (those being sent are held "
        "besides: see *Bounded queue*).",
    )
    max_queue_bytes: int = setting(
        256 * MIB,
        doc="Approximate memory (bytes) the queue may hold before `when_full` applies; each "
        "message counts its JSON size plus 160 bytes, or about 9x its JSON size plus 512 "
        "bytes while the message itself is kept (some plugin reads delivery reports, or it "
        "goes to `/import`). Those being sent are held besides (see *Bounded queue*).",
    )
    when_full: WhenFull = setting(
        "block",
        doc="`block`: the caller waits up to `block_timeout`, then gets a QueueFullError; "
        "`drop_newest`: the new message is dropped; `drop_oldest`: the oldest ones make room. "
        "Every drop is counted and reported as DROPPED.",
    )
    block_timeout: float = setting(1.0, doc="Seconds `send` may wait for room under `block`.")
    linger: float = setting(
        0.25, doc="Seconds the sender waits for a batch to fill before sending what it has."
    )
    flush_timeout: float = setting(
        30.0, doc="Bound (seconds) of `flush()`/`close()` called without a timeout."
    )
    exit_timeout: float = setting(
        5.0,
        doc="Bound (seconds) of the flush at interpreter exit, counted from the start of exit: "
        "the exit closes of several buffered transports all end within the largest "
        "`exit_timeout`, not their sum (each has at least 1 s, see *Interpreter exit*); 0 "
        "turns it off.",
    )
    dead_letter_path: str | None = setting(
        None,
        doc="JSON-lines file that receives every record rejected, or failed after the retry "
        "budget, with the reason. Unset: such records are only reported and logged.",
    )

    def __attrs_post_init__(self) -> None:
        for key in ("max_queue_messages", "max_queue_bytes"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key}: must be greater than 0")
        for key in ("block_timeout", "linger", "flush_timeout", "exit_timeout"):
            check_seconds(key, getattr(self, key))
        if self.dead_letter_path is not None and not self.dead_letter_path.strip():
            # Only a missing key means no file: an empty one is a ${VAR} set to "", say.
            raise ValueError(
                "dead_letter_path: must not be empty or blank; leave the key out to keep no "
                "dead-letter file"
            )
