"""A file grown or shrunk in the middle is another file to ``send``'s checkpoint: its first and
last MiB alone would say it is the same one, and a rerun would resume it at the old record
count (records skipped, or sent twice under other derived ``$insert_id`` values)."""

from __future__ import annotations

from pathlib import Path

from mixpanel_core.commands.checkpoint import SAMPLE_BYTES, file_identity


def test_files_sharing_their_first_and_last_mib_but_not_their_length_differ(
    tmp_path: Path,
) -> None:
    head, tail = b"h" * SAMPLE_BYTES, b"t" * SAMPLE_BYTES
    shorter = tmp_path / "shorter.ndjson"
    longer = tmp_path / "longer.ndjson"
    shorter.write_bytes(head + b"m" * 1000 + tail)
    longer.write_bytes(head + b"m" * 2000 + tail)

    assert file_identity(shorter) != file_identity(longer)
    assert file_identity(shorter) == file_identity(shorter), "the same content, the same identity"
