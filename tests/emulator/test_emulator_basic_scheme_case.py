"""The Authorization scheme is case-insensitive (RFC 9110 section 11.1): ``basic`` is Basic."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]


@pytest.mark.parametrize("scheme", ["basic", "BASIC"])
def test_import_reads_the_basic_scheme_in_any_case(
    mixpanel_emulator: Emulator, make_event: MakeEvent, scheme: str
) -> None:
    # Every other test lets requests write "Basic"; a case-sensitive comparison passed them.
    credentials = base64.b64encode(b"sa-user:sa-secret").decode()
    answer = requests.post(
        mixpanel_emulator.base_url + "/import",
        json=[make_event()],
        params={"project_id": "12345"},
        headers={"Authorization": f"{scheme} {credentials}"},
    )
    assert answer.status_code == 200, answer.text
