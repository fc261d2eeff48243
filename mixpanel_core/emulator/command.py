"""The ``emulator`` command: serve the Mixpanel ingestion API emulator until SIGINT or SIGTERM.

Secrets can come from the environment instead of the command line, where ``ps`` shows them:
``MIXPANEL_EMULATOR_API_SECRET`` and ``MIXPANEL_EMULATOR_SERVICE_ACCOUNT`` (``USER:SECRET``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from mixpanel_core.dedicated_process import collect_cycles_rarely
from mixpanel_core.emulator.config import (
    DEFAULT_API_SECRET,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_GROUP_RECORDS,
    DEFAULT_MAX_RECORDS,
    DEFAULT_PROJECT_ID,
    DEFAULT_SERVICE_ACCOUNT,
    DEFAULT_TOKEN,
    EmulatorConfig,
    EmulatorError,
)
from mixpanel_core.emulator.emulator import Emulator

API_SECRET_ENV = "MIXPANEL_EMULATOR_API_SECRET"
SERVICE_ACCOUNT_ENV = "MIXPANEL_EMULATOR_SERVICE_ACCOUNT"
READY_PREFIX = "Mixpanel emulator listening on "


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``emulator`` sub-command to a CLI."""
    parser = subparsers.add_parser(
        "emulator",
        help="serve a local emulator of Mixpanel's ingestion API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def _service_account(value: str) -> tuple[str, str]:
    user, separator, secret = value.partition(":")
    if not separator or not user or not secret:
        raise argparse.ArgumentTypeError(f"expected USER:SECRET (also from ${SERVICE_ACCOUNT_ENV})")
    return user, secret


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options, shared by the sub-command and ``python -m``."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="TOKEN",
        help=f"a project token to accept; repeatable (default: {DEFAULT_TOKEN})",
    )
    parser.add_argument(
        "--api-secret",
        # Empty stands for unset, as for the service account's variable.
        default=os.environ.get(API_SECRET_ENV) or DEFAULT_API_SECRET,
        help=f"legacy project API secret accepted by /import (env: {API_SECRET_ENV})",
    )
    parser.add_argument(
        "--service-account",
        type=_service_account,
        # A string default goes through ``type`` only when the emulator's options are parsed:
        # a malformed variable must not break every other sub-command as the parser is built.
        default=os.environ.get(SERVICE_ACCOUNT_ENV) or DEFAULT_SERVICE_ACCOUNT,
        metavar="USER:SECRET",
        help=f"service account accepted by /import (env: {SERVICE_ACCOUNT_ENV})",
    )
    parser.add_argument(
        "--no-api-secret",
        dest="api_secret",
        action="store_const",
        const=None,
        help="refuse legacy API-secret auth on /import",
    )
    parser.add_argument(
        "--no-service-account",
        dest="service_account",
        action="store_const",
        const=None,
        help="refuse service-account auth on /import",
    )
    parser.add_argument(
        "--project-id", default=DEFAULT_PROJECT_ID, help="project id /import expects"
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest uncompressed body before 413 (default: %(default)s)",
    )
    parser.add_argument(
        "--max-records",
        type=int,
        default=DEFAULT_MAX_RECORDS,
        help="records per request on /track, /engage, /import (default: %(default)s)",
    )
    parser.add_argument(
        "--max-group-records",
        type=int,
        default=DEFAULT_MAX_GROUP_RECORDS,
        help="records per request on /groups (default: %(default)s)",
    )
    parser.add_argument(
        "--record-file", type=Path, help="append every accepted record to this JSON-lines file"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="close a connection after this many seconds without a byte from the client"
        " (default: never)",
    )
    parser.add_argument(
        "--no-keep-records",
        dest="keep_records",
        action="store_false",
        help="keep only counters and dedupe keys in memory (long benchmarks)",
    )


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """The configuration the parsed options describe."""
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        tokens=tuple(args.tokens or (DEFAULT_TOKEN,)),
        api_secret=args.api_secret or None,
        service_account=args.service_account,
        project_id=str(args.project_id),
        max_body_bytes=args.max_body_bytes,
        record_file=args.record_file,
        max_records=args.max_records,
        max_group_records=args.max_group_records,
        keep_records=args.keep_records,
        idle_timeout=args.idle_timeout,
    )


def config_to_args(config: EmulatorConfig) -> tuple[list[str], dict[str, str]]:
    """Options and environment that rebuild ``config`` in another process (secrets in the env)."""
    options = ["--host", config.host, "--port", str(config.port), "--project-id", config.project_id]
    for token in config.tokens:
        options += ["--token", token]
    options += ["--max-body-bytes", str(config.max_body_bytes)]
    options += ["--max-records", str(config.max_records)]
    options += ["--max-group-records", str(config.max_group_records)]
    if config.record_file is not None:
        options += ["--record-file", str(config.record_file)]
    if not config.keep_records:
        options.append("--no-keep-records")
    if config.idle_timeout is not None:
        options += ["--idle-timeout", repr(config.idle_timeout)]
    environment: dict[str, str] = {}
    if not config.api_secret:  # an empty secret matches no request: the same as none
        options.append("--no-api-secret")
    else:
        environment[API_SECRET_ENV] = config.api_secret
    if config.service_account is None:
        options.append("--no-service-account")
    else:
        environment[SERVICE_ACCOUNT_ENV] = ":".join(config.service_account)
    return options, environment


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; print the base URL once listening."""
    try:
        emulator = Emulator.from_config(config_from_args(args)).start()
    except EmulatorError as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    # This process only serves the emulator: each request parses thousands of dicts that live
    # until it is answered, which at the default thresholds triggers frequent full collections.
    collect_cycles_rarely()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(READY_PREFIX + emulator.base_url, flush=True)
        # A timeout keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
