"""Reading records from JSON, NDJSON and gzipped files one at a time, in flat memory.

Gzip is told by its magic bytes, whatever the name. Then a name that says NDJSON (``.ndjson``,
``.jsonl``, either with ``.gz``) is always read as NDJSON: a first line that starts with ``[``
(a record that is an array) or that is broken is one bad record, not a sign that the whole
file is a JSON array or a single object. Any other name is told by content: a JSON array by a
leading ``[`` (streamed element by element); NDJSON when the first non-blank line is a whole
JSON value; otherwise one JSON object spread over several lines (read whole: it is one record).
"""

from __future__ import annotations

import codecs
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import attrs

from mixpanel_core import wire
from mixpanel_core.commands.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
READ_SIZE = 1 << 16
SHOWN_TEXT = 200
"""Characters of a bad line kept in the rejected file: enough to find it, not a whole dump."""


@attrs.frozen
class BadRecord:
    """A line that is not JSON: why, and (the start of) its text."""

    reason: str
    text: str


class RecordFile:
    """One input file, opened for reading records; a context manager.

    ``records(skip)`` yields every record (any JSON value, or ``BadRecord``) after the first
    ``skip``; ``bytes_read`` and ``size`` measure the file on disk (compressed, for gzip) so an
    ETA can be drawn from them.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._raw: BinaryIO = self.path.open("rb")
            self.size = self.path.stat().st_size
        except OSError as exc:
            raise InputError(f"{self.path}: cannot be read: {exc.strerror or exc}") from exc
        magic = self._raw.read(2)
        self._raw.seek(0)
        self.compressed = magic == GZIP_MAGIC
        self._stream: BinaryIO = (
            gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[assignment]
            if self.compressed
            else self._raw
        )

    def __enter__(self) -> RecordFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    @property
    def bytes_read(self) -> int:
        return 0 if self._raw.closed else self._raw.tell()

    def records(self, skip: int = 0) -> Iterator[object]:
        """Every record after the first ``skip``, in file order."""
        try:
            yield from self._records(skip)
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.path}: cannot be read: {exc}") from exc

    def _records(self, skip: int) -> Iterator[object]:
        first = b""
        for number, read in enumerate(self._stream):
            # Windows tools start UTF-8 text with a byte order mark; it belongs to no record.
            line = read.removeprefix(codecs.BOM_UTF8) if number == 0 else read
            if line.strip():
                first = line
                break
        if not first:
            return
        as_ndjson = self.path.name.removesuffix(".gz").endswith(NDJSON_SUFFIXES)
        if not as_ndjson and first.lstrip().startswith(b"["):
            items = _array_items(first, self._stream, self.path)
            for _ in range(skip):
                if next(items, _END) is _END:
                    return
            yield from items
            return
        parsed = _parse_line(first)
        if isinstance(parsed, BadRecord) and not as_ndjson and first.lstrip().startswith(b"{"):
            yield from _single_object(first + self._stream.read(), self.path, skip)
            return
        yield from self._ndjson(parsed, skip)

    def _ndjson(self, first: object, skip: int) -> Iterator[object]:
        if skip == 0:
            yield first
        skipped = 1
        for line in self._stream:
            if not line.strip():
                continue
            # Skipped lines are only counted, never parsed: resuming deep into a file is cheap.
            if skipped < skip:
                skipped += 1
                continue
            yield _parse_line(line)


_END = object()


def _parse_line(line: bytes) -> object:
    try:
        return wire.loads_record(line)
    except ValueError as exc:
        return _bad_record(exc, line.decode("utf-8", "replace"))


def _bad_record(error: ValueError, text: str) -> BadRecord:
    too_deep = isinstance(error, wire.NestedTooDeeplyError)
    reason = f"the record is {error}" if too_deep else f"not JSON: {error}"
    return BadRecord(reason, text.strip()[:SHOWN_TEXT])


def _single_object(data: bytes, path: Path, skip: int) -> Iterator[object]:
    record: object
    try:
        record = wire.loads_record(data)
    except wire.NestedTooDeeplyError as exc:
        record = _bad_record(exc, data.decode("utf-8", "replace"))  # JSON all the same
    except ValueError as exc:
        raise InputError(f"{path}: not JSON, NDJSON or a JSON array: {exc}") from exc
    if skip == 0:
        yield record


def _array_items(first: bytes, stream: BinaryIO, path: Path) -> Iterator[object]:
    """The elements of a JSON array, parsed one by one from a growing text window.

    ``raw_decode`` parses one element where it starts; when an element is cut by the end of the
    window, more is read and it is parsed again, so memory holds about one element at a time.
    """
    text = codecs.getincrementaldecoder("utf-8")(errors="strict")
    parser = json.JSONDecoder()
    window = text.decode(first)
    pos = window.index("[") + 1
    eof = False
    want_value = True
    read_size = READ_SIZE

    def more() -> bool:
        nonlocal window, pos, eof, read_size
        if eof:
            return False
        chunk = stream.read(read_size)
        eof = not chunk
        # Re-parsing a large element costs its length each time: grow reads with the window.
        read_size = max(READ_SIZE, len(window) - pos)
        window = window[pos:] + text.decode(chunk, final=eof)
        pos = 0
        return True

    while True:
        while pos < len(window) and window[pos] in " \t\r\n":
            pos += 1
        if pos >= len(window):
            if more():
                continue
            raise InputError(f"{path}: the JSON array is not closed (truncated file?)")
        char = window[pos]
        if char == "]":
            # Two arrays in one file (`cat a.json b.json`, or one batch a line) must not end
            # the file at the first `]`, dropping every record after it without a word.
            pos += 1
            while True:
                extra = window[pos:].strip(" \t\r\n")
                if extra:
                    raise InputError(
                        f"{path}: more data after the end of the JSON array (starting "
                        f"{extra[:20]!r}); a file holds one JSON array, or one record a line"
                    )
                pos = len(window)
                if not more():
                    return
        if not want_value:
            if char != ",":
                raise InputError(f"{path}: expected ',' or ']' in the JSON array, found {char!r}")
            pos += 1
            want_value = True
            continue
        try:
            value, end = _element(parser, window, pos, path)
        except json.JSONDecodeError as exc:
            if more():
                continue
            raise InputError(f"{path}: not valid JSON inside the array: {exc.msg}") from exc
        # A number cut by the window's end parses as a shorter number: read on to be sure.
        if end >= len(window) and more():
            continue
        yield value
        pos, want_value = end, False


def _element(parser: json.JSONDecoder, window: str, pos: int, path: Path) -> tuple[object, int]:
    """The array element starting at ``pos`` (a ``BadRecord`` when nested too deeply) and
    where it ends; raises ``json.JSONDecodeError`` when it is not JSON (or cut short)."""
    try:
        value, end = parser.raw_decode(window, pos)
    except RecursionError:
        # Where such an element ends cannot be told without reading it: nothing after it can
        # be read either.
        raise InputError(
            f"{path}: an element of the JSON array is nested too deeply to read (about a "
            "thousand levels), and nothing after it can be read: take it out of the file"
        ) from None
    text = window[pos:end]
    try:
        wire.check_depth(value, text)
    except wire.NestedTooDeeplyError as exc:
        return _bad_record(exc, text), end
    return value, end
