"""pytest fixtures that start the emulator: ``mixpanel_emulator`` and ``mixpanel_emulator_session``.

Loaded through the ``pytest11`` entry point, so every test in a project that installs
mixpanel-core can use them without a conftest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mixpanel_core.emulator.emulator import Emulator


@pytest.fixture
def mixpanel_emulator() -> Iterator[Emulator]:
    """A fresh emulator with default settings, started for one test and stopped after it."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def mixpanel_emulator_session() -> Iterator[Emulator]:
    """One emulator for the whole session; call ``reset()`` where a test needs a clean one."""
    with Emulator() as emulator:
        yield emulator
