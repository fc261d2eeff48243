"""``mixpanel-core plugins``: what transports and plugins are installed, and from where."""

from __future__ import annotations

import argparse

from mixpanel_core.registry import PLUGIN_GROUP, TRANSPORT_GROUP, discover, distribution_of


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed transports and plugins",
        description="List the transports and plugins found through entry points, with the "
        "distribution that provides each.",
        epilog="example: mixpanel-core plugins",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    for title, group in (("transports", TRANSPORT_GROUP), ("plugins", PLUGIN_GROUP)):
        print(f"{title} ({group}):")
        for name, entry_point in sorted(discover(group).items()):
            print(f"  {name:<24} {entry_point.value:<48} {distribution_of(entry_point)}")
    return 0
