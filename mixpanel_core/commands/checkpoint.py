"""The checkpoint file: how many records of each input file are confirmed delivered (the
input files of ``send``, the dead-letter file of ``replay-dead-letters --file``).

A file is known by its content, not its path (``file_identity``): renaming or moving it keeps
its place, changing it starts over. The same identity feeds the derived ``$insert_id`` values,
so the ids of a file's records never change between runs. The file is rewritten atomically
(write aside, then rename) after each confirmed chunk, so a run killed at any moment leaves
either the old or the new checkpoint, never a torn one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import orjson

from mixpanel_core.commands.errors import InputError

VERSION = 2
"""2: files known by their whole content (R71 F4). A version 1 checkpoint knew a file over
2 MiB by its size, first and last MiB: its counts cannot be matched to files any more, and
it is refused, saying so (``_load``)."""
READ_BYTES = 1 << 20
SAMPLE_BYTES = READ_BYTES
"""The sample of version 1 (its first and last MiB): a file up to twice as long has the same
identity in both versions."""


def check_file(path: Path) -> None:
    """Raise ``InputError`` unless ``path`` is a regular file this process can open."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            # A pipe (stdin, a FIFO, process substitution) cannot be read twice: the whole
            # read by ``file_identity`` would consume records that the reader after it then
            # never sees.
            raise InputError(
                f"{path}: not a regular file (a pipe or stdin?): it is read twice, once to "
                "know it on resume and once for its records; save it to a file first"
            )
        with path.open("rb"):
            pass
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from exc


def file_identity(path: Path) -> str:
    """32 hex characters from the size and the whole content of the file.

    The whole content, streamed through the hash a MiB at a time (R71 F4): the size, first
    MiB and last MiB alone took a same-size correction in the middle of a larger file for
    the same file, and the rerun skipped the corrected record. The cost, measured with
    blake2b on a 2-core machine: about 1 s a 512 MiB file in the page cache, and as long as
    one more read of the file from a disk (``send`` reads it once more for its records). A
    file up to 2 MiB keeps the identity that the sample gave (it covered all of it: the size,
    then every byte in order), and so do its derived ``$insert_id`` values.
    """
    check_file(path)
    digest = hashlib.blake2b(digest_size=16)
    try:
        with path.open("rb") as handle:
            digest.update(str(os.fstat(handle.fileno()).st_size).encode())
            while block := handle.read(READ_BYTES):
                digest.update(block)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    return digest.hexdigest()


class Checkpoint:
    """Confirmed record counts by file identity; ``path=None`` keeps them in memory only, and
    so does ``read_only`` (a dry run: what the file says is read, nothing is written)."""

    def __init__(self, path: str | Path | None, *, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self._files: dict[str, dict[str, Any]] = {}
        if self.path is not None and self.path.exists():
            _refuse_unless_regular(self.path)
            self._files = _load(self.path)
        if read_only:
            self.path = None
        if self.path is not None:
            # Tried before anything is sent: a folder that does not exist (a typo) or that
            # cannot be written stopped the run after its first chunk was sent.
            try:
                descriptor, aside = _aside(self.path)
                os.close(descriptor)
                os.unlink(aside)
            except OSError as exc:
                raise InputError(f"{self.path}: cannot write the checkpoint: {exc}") from exc

    def confirmed(self, identity: str) -> int:
        """Records of the file confirmed so far (0 for a file never seen)."""
        return int(self._files.get(identity, {}).get("confirmed", 0))

    def complete(self, identity: str) -> bool:
        """Whether the whole file was confirmed."""
        return bool(self._files.get(identity, {}).get("complete", False))

    def advance(self, identity: str, path: Path, confirmed: int, *, complete: bool = False) -> None:
        # The path is only shown to a reader: a name that is not UTF-8 (its bytes held as lone
        # surrogates, which orjson refuses to write) is shown with those bytes escaped.
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        self._files[identity] = {"path": shown, "confirmed": confirmed, "complete": complete}
        if self.path is None:
            return
        document = {"version": VERSION, "files": self._files}
        aside = None
        try:
            descriptor, aside = _aside(self.path)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(aside, self.path)
            aside = None
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write the checkpoint: {exc}") from exc
        finally:
            # Also on Ctrl-C or SIGTERM mid-write: each left a file of its own (review R65).
            if aside is not None:
                with contextlib.suppress(OSError):
                    os.unlink(aside)


def _aside(path: Path) -> tuple[int, str]:
    """A new file beside the checkpoint at ``path`` (open, and its path), where it is written
    before it replaces the last one whole. Made new (``O_EXCL``) under a name of its own: a
    fixed name (``CHECKPOINT.tmp``) truncated and replaced whatever held it, the file being
    replayed or the rejected file among them (review R63 F1)."""
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def _refuse_unless_regular(path: Path) -> None:
    """Raise ``InputError`` unless ``path`` is a regular file (a symlink to one included).

    Read as a checkpoint, ``/dev/null`` or a folder was "not a checkpoint ...; delete it to
    start over" (R71 F5): advice to delete a device, often as root, or a file mistyped in
    place of the checkpoint. A FIFO would have blocked the read.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InputError(f"{path}: cannot read the checkpoint: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        raise InputError(
            f"{path}: not a regular file; a checkpoint must be one (it is replaced whole "
            "as the run goes): give --checkpoint another path"
        )


def _load(path: Path) -> dict[str, dict[str, Any]]:
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InputError(
            f"{path}: not a checkpoint written by mixpanel-core send or replay-dead-letters "
            f"({exc}); "
            "delete it to start over"
        ) from exc
    files = document.get("files") if isinstance(document, dict) else None
    if isinstance(files, dict) and document.get("version") == 1:
        # Its counts were kept under identities of another kind: read as version 2, a file
        # over 2 MiB would be unknown and sent again from its first record, without a word.
        raise InputError(
            f"{path}: a version 1 checkpoint, of an older mixpanel-core, which knew a file over "
            "2 MiB by a sample of its content; this version knows files by all of it "
            "(version 2): finish the run it records with the older version, or delete it to "
            "start over (the records it confirmed are then sent again)"
        )
    if not isinstance(files, dict) or document.get("version") != VERSION:
        raise InputError(
            f"{path}: not a version {VERSION} checkpoint of mixpanel-core send or "
            "replay-dead-letters; "
            "delete it to start over"
        )
    return files
