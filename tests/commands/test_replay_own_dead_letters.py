"""`replay-dead-letters --file X` where X is a configured transport's `dead_letter_path` is
refused: what failed again would be appended to X by the transport, read back and sent again,
without end. As a second guard a dead-letter file is read only as far as it reached when the
replay opened it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.commands.dead_letter_sources import read_dead_letter_file
from mixpanel_core.emulator import Emulator
from mixpanel_core.testing import install_distribution

from .conftest import TOKEN, events, write_config

pytestmark = pytest.mark.integration


def _dead_letters(path: Path, count: int, start: int = 0) -> bytes:
    lines = b"".join(
        orjson.dumps({"endpoint": "import", "record": record}) + b"\n"
        for record in events(count, start)
    )
    with path.open("ab") as handle:
        handle.write(lines)
    return path.read_bytes()


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def _spelled(path: Path, spelling: str) -> str:
    if spelling == "relative":
        return os.path.relpath(path)
    if spelling == "symlink":
        link = path.with_name("link.jsonl")
        link.symlink_to(path)
        return str(link)
    return str(path)


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink"])
def test_the_dead_letter_file_of_a_configured_transport_is_refused_as_the_file(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str], spelling: str
) -> None:
    dead = tmp_path / "dead-letters.jsonl"
    extra = f'dead_letter_path = "{dead}"\n'
    config = write_config(tmp_path, mixpanel_emulator, extra=extra)
    before = _dead_letters(dead, 3)

    given = _spelled(dead, spelling)
    code = main(["replay-dead-letters", "--config", str(config), "--file", given])

    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("mixpanel-core: error: --file ")
    assert "transports.direct.dead_letter_path" in error
    assert str(dead) in error
    assert "move it aside" in error
    assert dead.read_bytes() == before
    assert mixpanel_emulator.client.records("import") == []


def test_the_moved_dead_letter_file_replays_as_the_docs_show(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    dead = tmp_path / "dead-letters.jsonl"
    config = write_config(tmp_path, mixpanel_emulator, extra=f'dead_letter_path = "{dead}"\n')
    _dead_letters(dead, 3)
    moved = dead.rename(tmp_path / "dead-letters.replay.jsonl")

    assert main(["replay-dead-letters", "--config", str(config), "--file", str(moved)]) == 0

    assert len(mixpanel_emulator.client.records("import")) == 3


def test_a_dead_letter_file_of_a_configured_transport_is_refused_as_the_rejected_file(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two writers appending to one file: the transport's whole lines and the command's buffered
    # ones can tear each other, and each failed record would be there twice.
    dead = tmp_path / "dead-letters.jsonl"
    config = write_config(tmp_path, mixpanel_emulator, extra=f'dead_letter_path = "{dead}"\n')
    source = tmp_path / "to-replay.jsonl"
    _dead_letters(source, 3)
    before = _dead_letters(dead, 1, start=10)

    arguments = ["replay-dead-letters", "--config", str(config), "--file", str(source)]
    code = main([*arguments, "--rejected-file", str(dead)])

    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"mixpanel-core: error: --rejected-file {dead} is ")
    assert "transports.direct.dead_letter_path" in error
    assert dead.read_bytes() == before
    assert mixpanel_emulator.client.records("import") == []


def test_a_dead_letter_file_is_read_only_as_far_as_it_reached_when_opened(
    tmp_path: Path,
) -> None:
    dead = tmp_path / "dead.jsonl"
    _dead_letters(dead, 3)
    letters = read_dead_letter_file(dead, TOKEN)

    first = next(letters)
    _dead_letters(dead, 3, start=3)  # what a transport appends meanwhile
    rest = list(letters)

    assert [letter.index for letter in [first, *rest]] == [0, 1, 2]


@pytest.mark.parametrize("command", ["replay-dead-letters", "send"])
def test_what_fails_again_is_kept_once_by_the_command_not_also_as_a_dead_letter(
    tmp_path: Path, mixpanel_emulator: Emulator, command: str
) -> None:
    # The transport's dead-letter file kept the same records as the command (its rejected
    # file, or its input to resume from): replaying both later applied a profile `$add` twice.
    dead = tmp_path / "dead-letters.jsonl"
    config = write_config(
        tmp_path, mixpanel_emulator, extra=f'dead_letter_path = "{dead}"\n', retry_budget=0.05
    )
    source = tmp_path / "input.jsonl"
    if command == "send":
        source.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in events(2)))
        args = ["send", "--endpoint", "import", str(source)]
    else:
        _dead_letters(source, 2)
        args = ["replay-dead-letters", "--file", str(source)]
    rejected = tmp_path / "rejected.jsonl"
    mixpanel_emulator.client.fail_next(1000, 503)

    code = main([*args[:1], "--config", str(config), *args[1:], "--rejected-file", str(rejected)])

    mixpanel_emulator.client.clear_faults()
    if command == "send":
        # Not delivered is not rejected: send stops, and running it again resumes them.
        assert code == 1
        assert _lines(rejected) == 0
    else:
        assert code == 0
        assert _lines(rejected) == 2
    assert _lines(dead) == 0
    assert mixpanel_emulator.client.records("import") == []


KEEPER = """
from transports.memory import MemoryTransport


class Keeper:
    '''A third party's transport whose own (required) option is named dead_letter_path.'''

    @classmethod
    def from_config(cls, options, context):
        if "dead_letter_path" not in options:
            raise ValueError("dead_letter_path: required")
        return MemoryTransport.from_config({}, context)
"""


def test_a_third_party_transports_own_dead_letter_path_option_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Removed from every transport before, which broke send with a transport that needs it.
    install_distribution(
        tmp_path,
        "acme-keeper",
        {"mixpanel_core.transports": {"keeper": "acme_keeper:Keeper"}},
        {"acme_keeper": KEEPER},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "mixpanel.toml"
    config.write_text(
        f'[mixpanel]\ntoken = "{TOKEN}"\n[transports.acme]\ntype = "keeper"\n'
        f'dead_letter_path = "{tmp_path / "acme.jsonl"}"\n'
    )
    source = tmp_path / "input.jsonl"
    source.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in events(2)))

    try:
        code = main(["send", "--config", str(config), "--endpoint", "import", str(source)])
    finally:
        sys.modules.pop("acme_keeper", None)  # imported from tmp_path: not for other tests

    assert code == 0
