"""``python -m mixpanel_core.emulator``: run the emulator from the command line."""

from __future__ import annotations

import argparse

from mixpanel_core.emulator.command import add_arguments, run


def main() -> int:
    """Parse the emulator options and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m mixpanel_core.emulator",
        description="Serve a local emulator of Mixpanel's ingestion API until SIGINT/SIGTERM.",
    )
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
