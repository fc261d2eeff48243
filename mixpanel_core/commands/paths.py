"""The files a command reads and writes, checked against each other before anything is read.

One file in two roles breaks a run. Read while it is appended to (rejected records by the
command, dead letters by a ``buffered_http`` transport), it never ends: each record that fails
again is read back and sent again while the file grows. Replaced whole after each chunk (the
checkpoint), it loses what is appended to it or the records to be read from it. Appended to by
two writers (the rejected file and a transport's dead letters), their lines can tear each
other. So every such pair is refused with one line naming both, before the run starts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from mixpanel_core.commands.errors import CommandError
from mixpanel_core.config import Config


@attrs.frozen
class RunFile:
    """A path a run uses: how the error names it, and what the run does to it."""

    role: str
    """As the error names it: ``--checkpoint``, ``a FILE``, ``transports.NAME.dead_letter_path``."""
    path: Path
    use: str
    """What the run does to it, after "would be": ``read``, ``replaced whole after each chunk``."""
    written: bool
    hint: str = ""
    """What to do instead, when not simply another path for ``role``."""


def read(role: str, path: Path, hint: str = "") -> RunFile:
    return RunFile(role, path, "read", written=False, hint=hint)


def written(role: str, path: Path, use: str) -> RunFile:
    return RunFile(role, path, use, written=True)


def dead_letter_files(config: Config) -> list[RunFile]:
    """The ``dead_letter_path`` of every configured transport (whether this run routes to it
    or not: which transports a plugin's router picks is known only message by message)."""
    files = []
    for name, transport in config.transports.items():
        path = transport.options.get("dead_letter_path")
        if isinstance(path, str):
            use = f"appended to with the dead letters of transport {name!r}"
            files.append(written(f"transports.{name}.dead_letter_path", Path(path), use))
    return files


def refuse_shared_files(config: Config, files: Sequence[RunFile]) -> None:
    """Raise ``CommandError`` when a path of ``files`` (those the command line names, in its
    order) is one of the configuration's dead-letter files or an earlier path of ``files``,
    and the run writes either of them. The later path is the one the error asks to change."""
    dead_letters = dead_letter_files(config)
    for at, later in enumerate(files):
        for earlier in [*dead_letters, *files[:at]]:
            if (later.written or earlier.written) and same_file(later.path, earlier.path):
                hint = later.hint or f"give {later.role} a different path"
                raise CommandError(
                    f"{later.role} {later.path} is {earlier.role} ({earlier.path}): one file "
                    f"would be {earlier.use} and {later.use}; {hint}"
                )


def same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file, also through a relative path or a link."""
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return first.resolve() == second.resolve()
