"""``FrameProducer``: packs a process's messages into frames and puts them on the queue.

One per process. ``send`` appends the message's wire line to a batch; a full batch is queued
by the caller, a partial one by a small thread after ``linger`` seconds. Queuing applies the
full-queue policy and notices a sender that is gone: the batch then goes to the fallback
transport, or is reported failed and the caller gets a ``TransportError``.

A batch holds lines (bytes) only: the messages are freed as soon as they are encoded, and
rebuilt from their lines in the rare case a batch cannot be queued. Lines are nothing for the
garbage collector to walk; the messages of a batch of hundreds would be.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import MixpanelCoreError, QueueFullError, TransportError
from mixpanel_core.messages import Message
from mixpanel_core.multiprocess.channel import QueueChannel
from mixpanel_core.multiprocess.frames import decode_frame, encode_frame, encode_line
from mixpanel_core.transport import Transport, TransportContext

logger = logging.getLogger(__name__)


class FrameProducer:
    """The producing half of a ``multiprocessing_queue`` transport, in one process."""

    def __init__(self, channel: QueueChannel, context: TransportContext) -> None:
        self._channel = channel
        self._options = channel.options
        self._context = context
        self._batch_lock = threading.Lock()
        # Frames are put one at a time so that one thread's batches stay in order.
        self._queue_lock = threading.Lock()
        self._lines: list[bytes] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._sender_gone = False
        self._fallback: Transport | None = None

    # -- taking messages --------------------------------------------------------------------

    def send(self, message: Message) -> None:
        if self._sender_gone:
            self._deliver_elsewhere([message], raising=True)
            return
        line = encode_line(message)
        with self._batch_lock:
            if self._closed:
                raise TransportError(f"{self._context.path}: the transport is closed")
            self._lines.append(line)
            if self._thread is None:
                self._start_linger_thread()
            if len(self._lines) < self._options.batch_size:
                return
            lines = self._take()
        self._queue(lines, raising=True)

    def flush(self) -> list[Message]:
        """Queue the partial batch; returns the messages that could not be queued."""
        with self._batch_lock:
            lines = self._take()
        return self._queue(lines, raising=False)

    def close(self) -> list[Message]:
        """Stop the linger thread and queue what is left. Idempotent."""
        with self._batch_lock:
            if self._closed:
                return []
            self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self._options.block_timeout + self._options.linger)
        return self.flush()

    def fail_unwritten(self, waited: float) -> list[Message]:
        """After a timed-out close: report FAILED, and return, the frames of this process
        that never reached the pipe (see ``QueueChannel.take_unwritten_frames``)."""
        messages = [
            m for frame in self._channel.take_unwritten_frames() for m in decode_frame(frame)
        ]
        reason = f"not queued: the sender did not read the queue for {waited}s while closing"
        self._report(messages, DeliveryStatus.FAILED, reason)
        logger.error(
            "%s: close() timed out; %d messages were not written to the queue (reported "
            "FAILED); one frame (up to %d messages) being written may be lost or cut",
            self._context.path,
            len(messages),
            self._options.batch_size,
        )
        return messages

    def put_control(self, item: object, timeout: float) -> None:
        """Queue a control item (owner only), waiting for room while the sender lives."""
        deadline = time.monotonic() + timeout
        with self._queue_lock:
            while True:
                try:
                    self._channel.frames.put(item, timeout=self._options.check_interval)
                    return
                except queue.Full:
                    if not self._channel.sender_alive():
                        raise TransportError(
                            f"{self._channel.describe_sender()} is not running"
                        ) from None
                    if time.monotonic() > deadline:
                        raise QueueFullError(
                            f"{self._context.path}: the queue stayed full for {timeout}s"
                        ) from None

    # -- the linger thread --------------------------------------------------------------------

    def _start_linger_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._linger, name=f"mixpanel-{self._context.name}-linger", daemon=True
        )
        self._thread.start()

    def _linger(self) -> None:
        while not self._closed:
            self._wake.wait(self._options.linger)
            if self._closed:
                return
            with self._batch_lock:
                lines = self._take()
            try:
                self._queue(lines, raising=False)
            except Exception:  # a background thread has no caller to tell; keep lingering
                logger.exception("%s: queuing a batch failed", self._context.path)

    def _take(self) -> list[bytes]:
        lines, self._lines = self._lines, []
        return lines

    # -- queuing one batch ---------------------------------------------------------------------

    def _queue(self, lines: list[bytes], raising: bool) -> list[Message]:
        if not lines:
            return []
        with self._queue_lock:
            frame = encode_frame(lines)
            if self._sender_gone or not self._channel.sender_alive():
                return self._deliver_elsewhere(decode_frame(frame), raising)
            policy = self._options.when_full
            if policy == "block":
                return self._put_blocking(frame, len(lines), raising)
            if policy == "drop_newest":
                return self._put_dropping_newest(frame, len(lines))
            return self._put_dropping_oldest(frame, len(lines))

    def _put_blocking(self, frame: bytes, records: int, raising: bool) -> list[Message]:
        deadline = time.monotonic() + self._options.block_timeout
        while True:
            try:
                self._channel.frames.put(frame, timeout=self._options.check_interval)
                self._channel.count_queued(records)
                return []
            except queue.Full:
                if not self._channel.sender_alive():
                    return self._deliver_elsewhere(decode_frame(frame), raising)
                if time.monotonic() > deadline:
                    break
        reason = f"the queue stayed full for {self._options.block_timeout}s (policy 'block')"
        messages = decode_frame(frame)
        self._report(messages, DeliveryStatus.FAILED, reason)
        if raising:
            raise QueueFullError(
                f"{self._context.path}: {reason}; {len(messages)} messages were not queued. "
                "Raise max_queue_messages or block_timeout, or choose a drop policy."
            )
        return messages

    def _put_dropping_newest(self, frame: bytes, records: int) -> list[Message]:
        try:
            self._channel.frames.put_nowait(frame)
            self._channel.count_queued(records)
        except queue.Full:
            dropped = decode_frame(frame)
            self._report(dropped, DeliveryStatus.DROPPED, "the queue was full (drop_newest)")
        return []

    def _put_dropping_oldest(self, frame: bytes, records: int) -> list[Message]:
        while True:
            try:
                self._channel.frames.put_nowait(frame)
                self._channel.count_queued(records)
                return []
            except queue.Full:
                pass
            try:
                oldest = self._channel.frames.get(timeout=self._options.check_interval)
            except queue.Empty:
                # The sender took something meanwhile: there is room now, or it is gone.
                if not self._channel.sender_alive():
                    return self._deliver_elsewhere(decode_frame(frame), raising=False)
                continue
            if isinstance(oldest, bytes):
                dropped = decode_frame(oldest)
                self._channel.count_queued(-len(dropped))
                self._report(dropped, DeliveryStatus.DROPPED, "the queue was full (drop_oldest)")
            else:
                # A control item from the owner must not be lost: queue it behind ours.
                self._channel.frames.put(oldest)

    # -- when the sender is gone ---------------------------------------------------------------

    def _deliver_elsewhere(self, messages: Sequence[Message], raising: bool) -> list[Message]:
        if not self._sender_gone:
            self._sender_gone = True
            # Frames this process queued may sit in the feeder thread forever: do not let
            # them hold up the process's exit.
            self._channel.frames.cancel_join_thread()
            logger.error("%s is not running", self._channel.describe_sender())
        fallback = self._fallback_transport()
        if fallback is not None:
            for message in messages:
                fallback.send(message)
            return []
        reason = f"{self._channel.describe_sender()} is not running and no fallback is configured"
        self._report(messages, DeliveryStatus.FAILED, reason)
        if raising:
            raise TransportError(
                f"{self._context.path}: {reason}; {len(messages)} messages were not queued"
            )
        return list(messages)

    def _fallback_transport(self) -> Transport | None:
        name = self._options.fallback
        if name is None:
            return None
        if self._fallback is None:
            try:
                self._fallback = self._context.resolve(name)
            except MixpanelCoreError as exc:
                raise TransportError(
                    f"{self._context.path}.fallback: cannot build {name!r}: {exc}"
                ) from exc
        return self._fallback

    def _report(self, messages: Sequence[Message], status: DeliveryStatus, reason: str) -> None:
        for message in messages:
            self._context.report(DeliveryReport(message, status, self._context.name, reason))
