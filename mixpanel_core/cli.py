"""``mixpanel-core``: the command line. Each sub-command lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import os
import select
import sys
from collections.abc import Sequence

from mixpanel_core.errors import MixpanelCoreError
from mixpanel_core.version import __version__

# Each module offers register(subparsers), which adds its parser with a `handler` default.
COMMAND_MODULES = (
    "mixpanel_core.commands.plugins",
    "mixpanel_core.commands.config_check",
    "mixpanel_core.emulator.command",
    "mixpanel_core.forwarder.command",
    "mixpanel_core.commands.send",
    "mixpanel_core.commands.replay",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixpanel-core",
        description="Send analytics to Mixpanel through a configured pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"mixpanel-core {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; errors of ours print one line and exit 1."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # here, where a reader gone away is seen, rather than at exit
    except MixpanelCoreError as exc:
        print(f"mixpanel-core: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        if not _stdout_is_broken():
            raise  # a socket's, not ours to hide
        return SIGPIPE_EXIT
    return code


SIGPIPE_EXIT = 141
"""What a shell shows for a command its reader left (128 + SIGPIPE): ``plugins | head -1``."""


def _stdout_is_broken() -> bool:
    # A pipe whose reader closed polls as an error; a socket's broken pipe leaves stdout be.
    poller = select.poll()
    try:
        poller.register(sys.stdout.fileno(), 0)
    except (OSError, ValueError):  # replaced by an object with no descriptor, or closed
        return False
    if not poller.poll(0):
        return False
    # Nothing more can reach the reader; /dev/null takes what the interpreter flushes at exit,
    # which would otherwise print a traceback for it.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return True


if __name__ == "__main__":
    sys.exit(main())
