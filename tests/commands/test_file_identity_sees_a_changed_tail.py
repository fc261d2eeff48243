"""A file of more than a MiB changed only near its end (a regenerated export whose last records
were corrected, the length unchanged) is another file to ``send``'s checkpoint: known by its size
and first MiB alone, a rerun would resume it at the old record count, skipping the corrected
records, and send the rest under the old derived ``$insert_id`` values."""

from __future__ import annotations

from pathlib import Path

from mixpanel_core.commands.checkpoint import SAMPLE_BYTES, file_identity


def test_files_sharing_their_length_and_first_mib_but_not_their_tail_differ(
    tmp_path: Path,
) -> None:
    head = b"h" * SAMPLE_BYTES
    before = tmp_path / "before.ndjson"
    corrected = tmp_path / "corrected.ndjson"
    before.write_bytes(head + b"m" * 1000 + b"old tail")
    corrected.write_bytes(head + b"m" * 1000 + b"new tail")

    assert file_identity(before) != file_identity(corrected)
