"""Helpers for testing code that uses mixpanel-core: an in-memory transport and a client on it,
a plugin that keeps every delivery report, a bounded wait on a ``multiprocessing_queue``
sender, and an installed distribution written on the spot, to test a plugin or transport
found through its entry point."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import attrs

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config, TransportConfig
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.errors import ConfigError
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.hookspecs import hookimpl
from mixpanel_core.multiprocess import QueueChannel
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.registry import TRANSPORT_GROUP, load

if TYPE_CHECKING:
    from transports.memory import MemoryTransport
else:
    # Found through its entry point, as the core finds every transport (DESIGN.md), and
    # loaded now so that it is a name of this module (type hints evaluated at run time,
    # ``dir()``). When it cannot be, an application's own ``transports`` package hiding
    # ours, say, importing this module still works: using the name raises the explanation.
    with contextlib.suppress(ConfigError):
        MemoryTransport = load(TRANSPORT_GROUP, "memory", "mixpanel_core.testing.MemoryTransport")


def __getattr__(name: str) -> object:
    if name == "MemoryTransport":  # only when loading it failed above: say why
        return load(TRANSPORT_GROUP, "memory", "mixpanel_core.testing.MemoryTransport")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def memory_client(
    token: str = "test-token",
    config: Config | None = None,
    *,
    plugins: Sequence[tuple[str, object]] = (),
) -> tuple[Mixpanel, MemoryTransport]:
    """A client whose every message lands in the returned ``MemoryTransport``.

    The transport is configured (``type = "memory"``, named ``default``, in place of any
    transports ``config`` has) and built by the client's pipeline, so it reports each message
    ACCEPTED to the ``mixpanel_delivered`` hooks: those of the plugins ``config`` enables and
    of ``plugins``, ``(name, object)`` pairs registered after them (a ``ReportCollector``, say).
    A ``MemoryTransport()`` passed to ``Mixpanel`` directly reports only to the ``report`` it
    was built with, by default nobody.
    """
    config = attrs.evolve(
        config or Config(), transports=FrozenDict(default=TransportConfig("memory"))
    )
    client = Mixpanel(token, pipeline=Pipeline.from_config(config, extra_plugins=plugins))
    # Type ``memory`` is ours: another distribution declaring it too is refused (a clash).
    return client, cast("MemoryTransport", client.pipeline.transport("default"))


class ReportCollector:
    """A plugin that keeps every delivery report it is given, in order (``reports``).

    Register it with the pipeline, e.g. ``Pipeline.from_config(config, extra_plugins=[("reports",
    collector)])`` or ``memory_client(plugins=[("reports", collector)])``: transports then build
    the reports they would otherwise skip. It sees the reports of transports the pipeline built
    from configuration; a transport object passed in reports to the ``report`` it was built with.
    """

    def __init__(self) -> None:
        self.reports: list[DeliveryReport] = []

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        self.reports.append(report)


def wait_until_sender_took(channel: QueueChannel, count: int, timeout: float = 20.0) -> None:
    """Wait until the sender of ``channel`` has taken ``count`` records off its queue (and
    every record written to it); ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while channel.never_taken() or channel.taken.value < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sender took {channel.taken.value} of {count} records")
        time.sleep(0.01)


def install_distribution(
    directory: str | os.PathLike[str],
    name: str,
    entry_points: Mapping[str, Mapping[str, str]],
    modules: Mapping[str, str] | None = None,
    version: str = "1.0",
) -> Path:
    """Write distribution ``name`` into ``directory`` as pip would install it: its modules
    (module name: source) and a ``.dist-info`` whose ``entry_points.txt`` holds
    ``entry_points`` (group: {entry name: "module:attribute"}). Once ``directory`` is on
    ``sys.path`` (or ``PYTHONPATH``, for a subprocess), ``importlib.metadata`` and so
    mixpanel-core find those entry points. Returns ``directory`` as a ``Path``.
    """
    directory = Path(directory)
    info = directory / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    sections = (
        f"[{group}]\n" + "".join(f"{entry} = {target}\n" for entry, target in targets.items())
        for group, targets in entry_points.items()
    )
    (info / "entry_points.txt").write_text("\n".join(sections))
    for module, source in (modules or {}).items():
        (directory / f"{module}.py").write_text(source)
    return directory


__all__ = [
    "MemoryTransport",
    "ReportCollector",
    "install_distribution",
    "memory_client",
    "wait_until_sender_took",
]
