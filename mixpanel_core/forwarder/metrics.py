"""The forwarder's counters and lag, as Prometheus text on an optional HTTP port.

The main loop is the only writer; the HTTP thread reads plain ints and a dict that the loop
replaces whole, so a scrape never sees a half-updated partition table and needs no lock.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from typing import Any

import attrs

COUNTERS = {
    "consumed": "Records read from Kafka.",
    "delivered": "Records Mixpanel accepted.",
    "rejected": (
        "Records Mixpanel rejected for good, and profile updates it may have applied "
        "unanswered: both dead-lettered at delivery."
    ),
    "poison": (
        "Records refused when read: not a message, or refused (or raised on) by a "
        "mixpanel_validate hook."
    ),
    "dead_lettered": "Records written to the dead-letter topic and acknowledged.",
    "retried": "Record sends repeated: after a 429, a 5xx or a network error, or to find the "
    "events a /track status 0 refused.",
    "commits": "Offset commits that succeeded.",
}

GAUGES = {
    "assigned_partitions": "Partitions the group gave this forwarder.",
    "stalled_group_lag": "Records waiting past the group's commits while this forwarder holds "
    "no partition and the group committed nothing between two checks (0 otherwise).",
}


@attrs.define
class ForwarderMetrics:
    """Counters since start, and the lag of each assigned partition."""

    consumed: int = 0
    delivered: int = 0
    rejected: int = 0
    poison: int = 0
    dead_lettered: int = 0
    retried: int = 0
    commits: int = 0
    lag: dict[tuple[str, int], int] = attrs.field(factory=dict)
    """Records between the committable offset and the partition's end, by (topic, partition)."""
    assigned_partitions: int = 0
    """Partitions the group gave this forwarder, as of the loop's last turn."""
    stalled_group_lag: int = 0
    """Records waiting past the group's commits while this forwarder holds no partition and
    the group committed nothing between two checks (see ``IdleWatch``); 0 otherwise."""

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    @property
    def total_lag(self) -> int:
        return sum(self.lag.values())

    def prometheus(self) -> str:
        """The metrics in Prometheus' text exposition format."""
        lines = []
        for name, help_text in COUNTERS.items():
            metric = f"mixpanel_forwarder_records_{name}_total"
            if name == "commits":
                metric = "mixpanel_forwarder_commits_total"
            lines += [
                f"# HELP {metric} {help_text}",
                f"# TYPE {metric} counter",
                f"{metric} {getattr(self, name)}",
            ]
        lines += [
            "# HELP mixpanel_forwarder_partition_lag Records not yet delivered, per partition.",
            "# TYPE mixpanel_forwarder_partition_lag gauge",
        ]
        for (topic, partition), lag in sorted(self.lag.items()):
            lines.append(
                f'mixpanel_forwarder_partition_lag{{topic="{_escape(topic)}",'
                f'partition="{partition}"}} {lag}'
            )
        for name, help_text in GAUGES.items():
            metric = f"mixpanel_forwarder_{name}"
            lines += [
                f"# HELP {metric} {help_text}",
                f"# TYPE {metric} gauge",
                f"{metric} {getattr(self, name)}",
            ]
        return "\n".join(lines) + "\n"


def _escape(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsServer:
    """Serves ``GET /metrics`` from a daemon thread (stdlib only, no new dependency).

    ``host`` is an IPv4 or IPv6 address (``::1``, ``::``) or a name; the socket's family
    follows it. Raises ``OSError`` when it cannot bind (``socket.gaierror`` for a name that
    does not resolve).
    """

    def __init__(self, metrics: ForwarderMetrics, host: str, port: int) -> None:
        handler = _handler_for(metrics)
        server_class = _IPv6Server if address_family(host, port) == socket.AF_INET6 else _IPv4Server
        self._server = server_class((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="forwarder-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def address_family(host: str, port: int) -> socket.AddressFamily:
    """The family to bind ``host`` with: IPv4 when it has an IPv4 address (as before IPv6 was
    supported, so ``localhost`` stays ``127.0.0.1``), else IPv6 (``::1``, ``::``)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    families = {family for family, *_ in found}
    return socket.AF_INET if socket.AF_INET in families or not families else socket.AF_INET6


class _IPv4Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET


class _IPv6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        # On "::", serve IPv4 scrapers too where the system allows it (as 0.0.0.0 would),
        # whatever net.ipv6.bindv6only says; the stdlib's own `python -m http.server` does so.
        with contextlib.suppress(OSError, AttributeError):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def _handler_for(metrics: ForwarderMetrics) -> type[http.server.BaseHTTPRequestHandler]:
    class MetricsHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404, "metrics are at /metrics")
                return
            body = metrics.prometheus().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes every few seconds would drown the forwarder's own log."""

    return MetricsHandler
