"""``mixpanel-core forward``: run the forwarder until SIGTERM/SIGINT (or until caught up).

Exit codes: 0 after a clean stop or once caught up; 1 when it had to stop (credentials refused,
a poison record under ``on_poison = "stop"``, a configuration error), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import socket
from types import FrameType

from mixpanel_core.config import load_config
from mixpanel_core.dedicated_process import collect_cycles_rarely
from mixpanel_core.errors import ConfigError
from mixpanel_core.forwarder.build import build_forwarder
from mixpanel_core.forwarder.config import ForwarderConfig, resolve
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.forwarder.metrics import ForwarderMetrics, MetricsServer
from mixpanel_core.ingestion.client import IngestionClient

logger = logging.getLogger("mixpanel_core.forwarder")

HOST_ERRNOS = (errno.EADDRNOTAVAIL, errno.EINVAL)
"""``bind`` errors that say the address, not the port, is wrong."""


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
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=log_level,
        metavar="LEVEL",
        help="logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL (default: %(default)s)",
    )
    parser.set_defaults(handler=run)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(text: str) -> str:
    """``--log-level``'s value, upper-cased; another word is argparse's usual error for the
    flag, before anything starts. ``logging``'s aliases are refused too: ``NOTSET`` would
    turn on every library's DEBUG output (review R68 F3)."""
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a logging level; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    return level


class _StoppedWhileStarting(BaseException):
    """SIGTERM or SIGINT while the forwarder was still being built: nothing was read yet.

    A ``BaseException``, as ``KeyboardInterrupt`` is: no ``except Exception`` on the way (a
    build translating kafka-python's errors) may take it for a failure of its own."""


def run(args: argparse.Namespace) -> int:
    """Build the forwarder from ``--config`` and run it; errors propagate to the CLI."""
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    forwarder: Forwarder | None = None
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        name = signal.Signals(signum).name
        if forwarder is None:
            # Still starting (up to bootstrap_timeout_ms with Kafka unreachable): left to the
            # default, the signal killed the process with nothing said. Raised once: a second
            # signal (SIGTERM, then Ctrl-C) raising again while the first unwinds would break
            # whatever it interrupts there (a lock being released).
            if not stopping:
                stopping = True
                raise _StoppedWhileStarting(name)
            return
        logger.info("%s received: finishing what is buffered", name)
        forwarder.request_stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        config = load_config(args.config)
        settings = resolve(config).forwarder
        metrics = ForwarderMetrics()
        # Bound before anything connects to Kafka: a port in use is a configuration error at
        # once, with no consumer or producer left open behind it.
        server = _serve_metrics(metrics, settings)
        client: IngestionClient | None = None
        try:
            # Bound as the build returns, in one statement: from then on the handler asks
            # the forwarder to stop (it closes what it owns) instead of raising past it.
            forwarder, client = build_forwarder(
                config, until_caught_up=args.until_caught_up, metrics=metrics
            )
            collect_cycles_rarely()  # this process is the forwarder's own
            forwarder.run(until_caught_up=args.until_caught_up)
        finally:
            if client is not None:
                client.close()
            if server is not None:
                server.stop()
        return 0
    except _StoppedWhileStarting as stopped:
        logger.info("%s received while starting: stopped before reading anything", stopped)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_metrics(metrics: ForwarderMetrics, settings: ForwarderConfig) -> MetricsServer | None:
    """The started metrics endpoint, or ``None`` without ``metrics_port``."""
    if settings.metrics_port is None:
        return None
    host, port = settings.metrics_host, settings.metrics_port
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address, as a URL writes it
    try:
        server = MetricsServer(metrics, host, port)
    except OSError as exc:
        # An OSError would reach the CLI as a traceback; this is the configuration's doing.
        # A name that does not resolve, an address that is not this machine's (or an IPv6
        # link-local one without its %interface: EINVAL), is metrics_host's; anything else
        # (in use, below 1024 without the right) is the port's.
        wrong_host = isinstance(exc, socket.gaierror) or exc.errno in HOST_ERRNOS
        key = "metrics_host" if wrong_host else "metrics_port"
        raise ConfigError(
            f"forwarder.{key}: cannot serve metrics on {shown}:{port}: {exc.strerror or exc}"
        ) from None
    server.start()
    logger.info("metrics at http://%s:%d/metrics", shown, server.port)
    return server
