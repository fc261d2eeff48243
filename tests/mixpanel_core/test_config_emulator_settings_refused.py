"""``EmulatorConfig`` refuses, when built, settings with which it would refuse every request: no
project token, a body or record limit of 0. Kills mutants accepting them, which survived
every test.
"""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core.emulator.config import EmulatorConfig, EmulatorError


def test_no_token_is_refused() -> None:
    with pytest.raises(EmulatorError, match=r"^tokens is empty: configure at least one"):
        EmulatorConfig(tokens=())


@pytest.mark.parametrize("key", ["max_body_bytes", "max_records", "max_group_records"])
def test_a_limit_of_0_is_refused_naming_the_limits(key: str) -> None:
    settings: dict[str, Any] = {key: 0}
    with pytest.raises(EmulatorError) as caught:
        EmulatorConfig(**settings)
    assert str(caught.value) == ("max_body_bytes, max_records and max_group_records must be > 0")
