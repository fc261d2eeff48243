"""Where replayed records come from: a dead-letter file, or the forwarder's dead-letter topic.

Both yield ``Letter`` items: a message ready to send again, or a ``Rejection`` saying why the
entry cannot become one. A dead-letter topic record is the forwarder's: the original key, value
and headers plus ``dead-letter-*`` headers (``mixpanel_core.forwarder.dead_letters``). Events
without ``$insert_id`` get the id the forwarder derived from the record's *source* position, so a
record the forwarder did deliver once is deduplicated by Mixpanel.

A topic record that cannot become a message is rejected whole (its complete value and its
``dead-letter-*`` headers): the replay commits past it, and the rejected file is then the only
copy left.
"""

from __future__ import annotations

import base64
import codecs
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from mixpanel_core import wire
from mixpanel_core.commands.checkpoint import file_identity
from mixpanel_core.commands.errors import CommandError, InputError
from mixpanel_core.commands.records import build_message, problem_field
from mixpanel_core.commands.rejected import Rejection
from mixpanel_core.commands.sources import SHOWN_TEXT
from mixpanel_core.errors import TransportError, ValidationError
from mixpanel_core.forwarder.dead_letters import NULL_VALUE_HEADER, PREFIX
from mixpanel_core.forwarder.decode import Poison, decode
from mixpanel_core.frozen import thaw
from mixpanel_core.kafka import headers as kafka_headers
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.log_ends import LogEnds
from mixpanel_core.messages import ENDPOINTS, Endpoint, Message

SOURCE_TOPIC = PREFIX + "source-topic"
SOURCE_PARTITION = PREFIX + "source-partition"
SOURCE_OFFSET = PREFIX + "source-offset"
POLL_TIMEOUT_MS = 500


@attrs.frozen
class Letter:
    """One dead letter: where it sits (``source``, ``index``) and what it became."""

    source: str
    index: int
    content: Message | Rejection
    dead_letter: tuple[tuple[str, str], ...] = ()
    """Why and from where it was dead-lettered (``Rejection.dead_letter``), for its rejection."""
    enriched: bool = True
    """Whether its record went through the pipeline's enrichers already (``Rejection.enriched``):
    a dead letter is the record as sent, so the replay does not run them again."""


def read_dead_letter_file(
    path: Path, token: str | None, identity: str | None = None, skip: int = 0
) -> Iterator[Letter]:
    """The entries of a dead-letter file (or a rejected file of ``send``), one per line, from
    the ``skip``-th on (those before it confirmed by an earlier replay). ``identity``: the
    file's, if already known (see ``file_identity``).

    Only the lines the file held when it was opened: were something to append to it during the
    replay (a transport whose dead-letter file it is, under a name the command could not
    tell), what failed again would be read back and sent again, without end.
    """
    identity = identity or file_identity(path)
    try:
        with path.open("rb") as handle:
            index = -1
            lines = _lines_before(handle, os.fstat(handle.fileno()).st_size)
            for number, read in enumerate(lines):
                # An editor may save the file with a UTF-8 byte order mark: not part of a line.
                line = read.removeprefix(codecs.BOM_UTF8) if number == 0 else read
                if not line.strip():
                    continue
                index += 1
                if index < skip:
                    continue
                yield _file_letter(str(path), index, line, (identity, index), token)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from exc


def _lines_before(handle: BinaryIO, end: int) -> Iterator[bytes]:
    """The lines of ``handle`` that start before byte ``end``."""
    start = 0
    for line in handle:
        if start >= end:
            return
        yield line
        start += len(line)


def _file_letter(
    source: str, index: int, line: bytes, natural_key: tuple[object, ...], token: str | None
) -> Letter:
    try:
        entry = wire.loads(line)
    except ValueError as exc:
        rejection = Rejection("read", "invalid", f"not a dead-letter line: {exc}", _shown(line))
        return Letter(source, index, rejection)
    if not isinstance(entry, dict) or "record" not in entry:
        rejection = Rejection("read", "invalid", "not a dead-letter line: no 'record'", entry)
        return Letter(source, index, rejection)
    try:
        # The record's depth, not the line's: a line holds its record one level down.
        wire.check_depth(entry["record"], line)
    except wire.NestedTooDeeplyError as exc:
        rejection = Rejection("read", "invalid", f"the record is {exc}", _shown(line))
        return Letter(source, index, rejection)
    # A line of an earlier replay's rejected file keeps what it said about a topic record when
    # it is rejected again.
    dead_letter = _text_pairs(entry.get("dead_letter"))
    enriched = _enriched(entry)
    endpoint = entry.get("endpoint")
    if endpoint not in ENDPOINTS:
        endpoint = None  # a rejected line of `send` may not know it: tell it from the shape
    try:
        message = build_message(entry["record"], endpoint, natural_key, token)
    except ValidationError as error:
        encoding = entry.get("record_encoding")
        rejection = Rejection(
            "validation",
            "invalid",
            str(error),
            entry["record"],
            endpoint,
            problem_field(error),
            record_encoding=encoding if isinstance(encoding, str) else None,
            enriched=enriched,
        )
        return Letter(source, index, rejection, dead_letter, enriched)
    return Letter(source, index, message, dead_letter, enriched)


def _shown(line: bytes) -> str:
    """The start of a line that cannot be replayed, for the rejected file (the line itself
    stays in the file read)."""
    return line.decode("utf-8", "replace").strip()[:SHOWN_TEXT]


def _enriched(entry: dict[str, Any]) -> bool:
    """Whether a line's record went through the pipeline's enrichers already: as its
    ``enriched`` key says; without one (a file written before there was one), unless `send`
    refused it as read (``stage`` ``read`` or ``validation``): a dead letter of a transport is
    the record as sent."""
    said = entry.get("enriched")
    if isinstance(said, bool):
        return said
    return entry.get("stage") not in ("read", "validation")


def _text_pairs(table: object) -> tuple[tuple[str, str], ...]:
    """A rejected line's ``dead_letter`` object as pairs; ``()`` when it has none."""
    if not isinstance(table, dict):
        return ()
    return tuple((str(name), str(value)) for name, value in table.items())


class DeadLetterTopic:
    """Reads every partition of ``topic`` from the group's committed offsets until it has
    reached the ends seen at start (``LogEnds``), then stops; ``commit`` marks records done.

    Partitions are assigned, not subscribed: no group join (and its wait), and the group's
    committed offsets still say where the last replay stopped. Run one replay per group at a
    time.
    """

    def __init__(self, consumer: Any, topic: str) -> None:
        kafka = kafka_python()
        self._consumer = consumer
        self._offset_and_metadata = kafka.structs.OffsetAndMetadata
        self._kafka_error: type[Exception] = kafka.errors.KafkaError
        self.topic = topic
        try:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise CommandError(f"--topic: topic {topic!r} does not exist on this cluster")
            assigned = [kafka.TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            self.ends = LogEnds(consumer.end_offsets(assigned))
            for partition in assigned:
                committed = consumer.committed(partition)
                if committed is None:
                    consumer.seek_to_beginning(partition)
                else:
                    consumer.seek(partition, committed)
        except self._kafka_error as exc:
            raise TransportError(f"--topic {topic}: Kafka refused: {exc}") from exc
        self._assigned = assigned

    def batches(self, max_records: int) -> Iterator[list[Any]]:
        """Lists of consumer records, oldest first per partition, until caught up."""
        while True:
            remaining = [p for p in self._assigned if not self._at_end(p)]
            if not remaining:
                return
            # Partitions at their end are paused so that records produced since the start are
            # not fetched: a replay under a steady stream of new dead letters still ends.
            self._consumer.pause(*[p for p in self._assigned if p not in remaining])
            polled = self._consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=max_records)
            # Records fetched past an end offset are replayed too, not dropped: a fetch
            # returns whole batches.
            batch = [record for records in polled.values() for record in records]
            if batch:
                yield batch

    def _at_end(self, partition: Any) -> bool:
        if not self.ends.checked(self._consumer, (partition,)):
            return False  # not fetched yet: the end the broker listed may be short
        return bool(self._consumer.position(partition) >= self.ends.offsets[partition])

    def commit(self, records: Sequence[Any]) -> None:
        """Commit past ``records`` (all delivered or written out) for the group."""
        kafka = kafka_python()
        offsets: dict[Any, int] = {}
        for record in records:
            partition = kafka.TopicPartition(record.topic, record.partition)
            offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
        make = self._offset_and_metadata
        try:
            self._consumer.commit({tp: make(offset, "", -1) for tp, offset in offsets.items()})
        except self._kafka_error as exc:
            raise CommandError(
                f"--topic {self.topic}: the commit failed ({exc}); the replayed records are "
                "delivered and will be deduplicated if replayed again"
            ) from exc

    def close(self) -> None:
        self._consumer.close()


def letter_from_record(record: Any, token: str | None) -> Letter:
    """A dead-letter topic record as a ``Letter`` (the forwarder's decoder does the decoding)."""
    record_headers: list[tuple[str, bytes | None]] = list(record.headers or ())
    where = f"{record.topic}/{record.partition}"
    dead_letter = _dead_letter_headers(record_headers)
    topic = kafka_headers.header(record_headers, SOURCE_TOPIC) or record.topic
    partition = _int_header(record_headers, SOURCE_PARTITION, record.partition)
    offset = _int_header(record_headers, SOURCE_OFFSET, record.offset)
    value: bytes | None = record.value
    if not value and kafka_headers.header(record_headers, NULL_VALUE_HEADER) is not None:
        value = None  # the forwarder's stand-in for a record with neither key nor value
    decoded = decode(topic, partition, offset, value, record_headers)
    if isinstance(decoded, Poison):
        endpoint = kafka_headers.header(record_headers, kafka_headers.ENDPOINT)
        complete, encoding = _complete_value(value)
        rejection = Rejection(
            "read",
            "invalid",
            decoded.reason,
            complete,
            endpoint if endpoint in ENDPOINTS else None,
            decoded.field,
            record_encoding=encoding,
        )
        return Letter(where, record.offset, rejection, dead_letter)
    return Letter(where, record.offset, _with_token(decoded, token), dead_letter)


def _dead_letter_headers(
    record_headers: Sequence[tuple[str, bytes | None]],
) -> tuple[tuple[str, str], ...]:
    """The ``dead-letter-*`` headers as text (the forwarder writes them as UTF-8)."""
    return tuple(
        (name, value.decode("utf-8", "replace"))
        for name, value in record_headers
        if name.startswith(PREFIX) and value is not None
    )


def _with_token(message: Message, token: str | None) -> Message | Rejection:
    if token is None:
        return message
    endpoint: Endpoint = message.endpoint
    try:
        # Rebuilt through the same path as files, so a missing token is filled the same way.
        return build_message(thaw(message.record), endpoint, (), token)
    except ValidationError as error:
        return Rejection("validation", "invalid", str(error), message.record, endpoint)


def _int_header(record_headers: list[tuple[str, bytes | None]], name: str, default: int) -> int:
    value = kafka_headers.header(record_headers, name)
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _complete_value(value: bytes | None) -> tuple[Any, str | None]:
    """A dead letter's value for the rejected file, whole, and its ``record_encoding``.

    Whole, because the replay commits past it: the rejected file is then its only copy.
    """
    if value is None:
        return None, None
    try:
        return wire.loads_record(value), None
    except ValueError:
        pass
    try:
        return value.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), "base64"
