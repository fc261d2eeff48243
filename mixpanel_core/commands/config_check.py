"""``mixpanel-core config check PATH``: load a file, build every part, report problems."""

from __future__ import annotations

import argparse
import sys

from mixpanel_core.config import load_config
from mixpanel_core.errors import ConfigError, MixpanelCoreError
from mixpanel_core.pipeline import Pipeline


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "config",
        help="check a configuration file",
        description="Work with configuration files.",
    )
    verbs = parser.add_subparsers(title="verbs", metavar="VERB", required=True)
    check = verbs.add_parser(
        "check",
        help="validate a TOML file",
        description="Read PATH, expand ${VAR}s, check every key, load every enabled plugin "
        "and check every transport's options. Exits 1 with the key path of the first problem.",
        epilog="example: mixpanel-core config check mixpanel.toml",
    )
    check.add_argument("path", help="the TOML file")
    check.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.path)
    pipeline = Pipeline.from_config(config)
    try:
        pipeline.check_routing()
    except ConfigError as exc:
        if config.forwarder is None:
            raise
        # A forwarder's file needs no route (the forwarder sends through no router), but an
        # application sharing it would be refused: said, not an error.
        print(
            f"{args.path}: note: for an application using this file (and send or "
            f"replay-dead-letters without --transport): {exc}",
            file=sys.stderr,
        )
    # Building transports checks their options; close at once so nothing keeps running.
    try:
        pipeline.build_all()
    finally:
        try:
            pipeline.close(timeout=1)
        except MixpanelCoreError:
            raise
        except Exception as exc:
            # A third-party transport's bug, said on one line like every other problem found;
            # its text is left out, as it may quote what the transport was given.
            raise ConfigError(
                f"{args.path}: a transport raised {type(exc).__name__} when closed after the "
                "check (run it from Python to see its traceback)"
            ) from exc
    if not config.mixpanel.token:
        # Commands and the forwarder need none (records carry theirs); a client does.
        print(
            f"{args.path}: note: for an application using this file: mixpanel.token: "
            "required to build a client (Mixpanel.from_config refuses the file)",
            file=sys.stderr,
        )
    print(
        f"{args.path}: ok ({len(config.plugins)} plugins: {', '.join(config.plugins)}; "
        f"{len(config.transports)} transports: {', '.join(config.transports)}; "
        f"{len(config.routes)} routes)"
    )
    return 0
