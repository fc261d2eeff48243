"""Makes ``mp_workers``, ``pipe_probe`` and ``owner_close`` importable by name, here and in
spawned children (which inherit ``sys.path``), since the tests run with
``--import-mode=importlib``; and the emulator, in a process of its own, that these tests
deliver to."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixpanel_core.emulator import EmulatorProcess

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess() as emulator:
        yield emulator
