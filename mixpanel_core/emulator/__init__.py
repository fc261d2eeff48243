"""A local emulator of Mixpanel's ingestion API (/track, /engage, /groups, /import) for tests,
demos and benchmarks.

::

    from mixpanel_core.emulator import Emulator

    with Emulator() as emu:
        ...  # point a client at emu.base_url
        assert emu.stats()["accepted"]["import"] == 10

``EmulatorProcess`` runs the same server in a child process; ``EmulatorClient`` controls any
running emulator over HTTP. See docs/emulator.md.
"""

from mixpanel_core.emulator.client import EmulatorClient
from mixpanel_core.emulator.config import EmulatorConfig, EmulatorError
from mixpanel_core.emulator.controls import EmulatorControls
from mixpanel_core.emulator.emulator import Emulator
from mixpanel_core.emulator.process import EmulatorProcess

__all__ = [
    "Emulator",
    "EmulatorClient",
    "EmulatorConfig",
    "EmulatorControls",
    "EmulatorError",
    "EmulatorProcess",
]
