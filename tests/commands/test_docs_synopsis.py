"""Each command's synopsis in docs/commands.md shows every option its parser takes: the emulator's
lacked `--idle-timeout`, which `mixpanel-core emulator --help` lists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from mixpanel_core.cli import build_parser

COMMANDS_MD = Path(__file__).resolve().parents[2] / "docs" / "commands.md"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _synopsis(command: str) -> str:
    """The first code block under the heading ``## `mixpanel-core COMMAND` ``."""
    text = COMMANDS_MD.read_text()
    section = text.split(f"## `mixpanel-core {command}`", 1)[1]
    return section.split("```", 2)[1]


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """The long options of ``parser``, or the short one where it has no long one (not -h)."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        longs = [o for o in action.option_strings if o.startswith("--")]
        found.add((longs or action.option_strings)[0])
    return found


@pytest.mark.parametrize("command", ["send", "replay-dead-letters", "forward", "emulator"])
def test_the_synopsis_shows_every_option_of_the_command(command: str) -> None:
    shown = set(re.findall(r"--[a-z][a-z-]*", _synopsis(command)))
    taken = _options(_subparsers()[command])
    assert taken - shown == set(), "options the synopsis lacks"
    assert shown - taken == set(), "options the synopsis shows that the command does not take"
