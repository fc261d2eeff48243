"""``mixpanel-core forward``: run the forwarder until SIGTERM/SIGINT (or until caught up).

Exit codes: 0 after a clean stop or once caught up; 1 when it had to stop (credentials refused,
a poison record under ``on_poison = "stop"``, a configuration error), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType

from mixpanel_core.config import load_config
from mixpanel_core.dedicated_process import collect_cycles_rarely
from mixpanel_core.forwarder.build import build_forwarder
from mixpanel_core.forwarder.metrics import MetricsServer

logger = logging.getLogger("mixpanel_core.forwarder")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``forward`` sub-command to a CLI."""
    parser = subparsers.add_parser(
        "forward",
        help="deliver what the kafka transport produced to Mixpanel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="the TOML file (default: $MIXPANEL_CORE_CONFIG, else ./mixpanel.toml)",
    )
    parser.add_argument(
        "--until-caught-up",
        action="store_true",
        help="exit 0 once everything that was in the topic at start has been delivered",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default: %(default)s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Build the forwarder from ``--config`` and run it; errors propagate to the CLI."""
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = load_config(args.config)
    forwarder, client = build_forwarder(config, until_caught_up=args.until_caught_up)
    collect_cycles_rarely()  # this process is the forwarder's own
    settings = forwarder.config
    server = None
    if settings.metrics_port is not None:
        server = MetricsServer(forwarder.metrics, settings.metrics_host, settings.metrics_port)
        server.start()
        logger.info("metrics at http://%s:%d/metrics", settings.metrics_host, server.port)

    def stop(signum: int, frame: FrameType | None) -> None:
        logger.info("%s received: finishing what is buffered", signal.Signals(signum).name)
        forwarder.request_stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        forwarder.run(until_caught_up=args.until_caught_up)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        client.close()
        if server is not None:
            server.stop()
    return 0
