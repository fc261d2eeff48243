"""What the raw JSON text of a batch proves about every record in it, checked at C speed.

Per-record validation must look inside each property value (nesting, list sizes, strings to
truncate): a Python loop over every value of every record, which costs more than parsing the
batch. For the usual batch the same facts can be read off the text the records were parsed
from, in a few passes of C code over bytes, and the loop is then skipped for the whole batch.
Each test may answer False when the fact holds (the caller then checks each record in full),
never True when it does not.
"""

from __future__ import annotations

from mixpanel_core.api_limits import MAX_STRING_LENGTH

# Every byte but '"' becomes 'a': a run of 'a's is then a stretch of text without a quote.
_ALL_BUT_QUOTES_TO_A = bytes(byte if byte == ord('"') else ord("a") for byte in range(256))
_LONGER_THAN_LIMIT = b"a" * (MAX_STRING_LENGTH + 1)


def holds_flat_events(text: bytes, count: int) -> bool:
    """True if no property value of the ``count`` records parsed from ``text`` is an object or a
    list, PROVIDED every record is an object whose ``properties`` is an object.

    Such a record has at least two '{' (its own and its properties'), so exactly ``2 * count``
    in the whole text means none has more; and a '[' other than the batch's own opening one
    means a list somewhere. A brace or bracket inside a string only makes the answer False.
    Without the proviso the count can balance (a bare number next to a record with a nested
    object), so the caller must fall back to full checks when a record lacks that shape.
    """
    body = text.lstrip()  # the same object when there is nothing to strip
    first_list_allowed = 1 if body[:1] == b"[" else 0
    if body.find(b"[", first_list_allowed) != -1:
        return False
    # Counted as what deleting them removes: replace() finds them with memchr, about three
    # times faster than count(), which compares byte by byte.
    return len(body) - len(body.replace(b"{", b"")) == 2 * count


def holds_short_strings(text: bytes) -> bool:
    """True if no JSON string in ``text`` is longer than ``MAX_STRING_LENGTH`` characters.

    A string's characters lie between two unescaped quotes and take at least one byte each
    (escapes and UTF-8 sequences take more), so a text without a quote-free stretch longer
    than the limit has no longer string.
    """
    if b"\\" in text:
        # An escaped quote would split a long string's stretch in two. Blanking each escaped
        # backslash, then each escaped quote, as str.replace does from the left, reads the
        # escapes as a JSON parser does; the blanks keep every length.
        text = text.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    return _LONGER_THAN_LIMIT not in text.translate(_ALL_BUT_QUOTES_TO_A)
