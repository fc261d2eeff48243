"""Settings for the processes mixpanel-core owns: the forwarder, the sender, the emulator."""

from __future__ import annotations

import gc


def collect_cycles_rarely() -> None:
    """Tune the cyclic garbage collector for a process that only moves messages.

    Messages hold no reference cycles (reference counting frees them), yet each is several
    objects the collector tracks; at the default thresholds it spends up to a third of such a
    process's time re-scanning what is queued. Freezing what exists at start (modules,
    configuration) keeps it out of every scan. Only for processes we start: never called in
    an application's own process.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
