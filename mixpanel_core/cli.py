"""``mixpanel-core``: the command line. Each sub-command lives in its own module."""

from __future__ import annotations

import argparse
import importlib
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
    except MixpanelCoreError as exc:
        print(f"mixpanel-core: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
