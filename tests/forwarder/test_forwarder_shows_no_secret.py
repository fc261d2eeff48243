"""The forwarder never shows an `/import` credential: not in its log at DEBUG, not in a dead
letter, whatever Mixpanel answers (retries, a strict rejection, refused credentials).

Each case runs the forwarder command as a user does, against an emulator that accepts (or, for
the refusals, is told to refuse) a credential holding a canary value, and looks for the canary
as written, URL-quoted and inside the Basic authorization header the request carried.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core.emulator import Emulator

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration

SA_USER = "sa-user"
SA_SECRET = "sa-canary-4d1f9e/+=x"
API_SECRET = "api-canary-b82c07/+=y"

CREDENTIALS = {
    "service account": {
        "service_account_username": SA_USER,
        "service_account_secret": SA_SECRET,
        "project_id": "12345",
    },
    "api secret": {"api_secret": API_SECRET},
}


def _shown_forms(secret: str, authorization: str) -> list[str]:
    return [
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        base64.b64encode(authorization.encode()).decode(),
    ]


FORBIDDEN = _shown_forms(SA_SECRET, f"{SA_USER}:{SA_SECRET}") + _shown_forms(
    API_SECRET, f"{API_SECRET}:"
)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(service_account=(SA_USER, SA_SECRET), api_secret=API_SECRET) as running:
        yield running


@pytest.fixture
def make_rig(
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    emulator: Emulator,
    tmp_path: Path,
) -> Iterator[Callable[[], ForwardingRig]]:
    rigs: list[ForwardingRig] = []

    def make() -> ForwardingRig:
        rig = ForwardingRig(
            kafka_bootstrap,
            kafka_topic_factory(),
            kafka_topic_factory(partitions=1, prefix="dead-letters"),
            emulator,
            tmp_path,
        )
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.stop_all()


def _config(rig: ForwardingRig, credential: dict[str, str]) -> Path:
    # No validation plugin: Mixpanel, not a hook, is the one to reject the placeholder id.
    path = rig.write_config(mixpanel=credential, plugins=[])
    # The rig's table always holds a service account; the api-secret case must hold none.
    if "api_secret" in credential:
        kept = [
            line
            for line in path.read_text().splitlines()
            if not line.startswith(("service_account_", "project_id"))
        ]
        path.write_text("\n".join(kept) + "\n")
    return path


def _produce_imports(rig: ForwardingRig, count: int) -> None:
    client = rig.client()
    for i in range(count):
        client.import_data(None, f"user-{i}", "Backfilled", 1_700_000_000 + i)
    assert client.close(30) == []


def _everything_written(dead_letters: list[Any]) -> str:
    parts = []
    for record in dead_letters:
        parts.append(repr(record.key))
        parts.append(repr(record.value))
        parts.extend(f"{name}={value!r}" for name, value in record.headers)
    return "\n".join(parts)


def _run_at_debug(rig: ForwardingRig, config: Path) -> tuple[int, str]:
    process = rig.start(config, "--until-caught-up", "--log-level", "DEBUG")
    _, stderr = process.communicate(timeout=90)
    return process.returncode, stderr


def _assert_hidden(text: str) -> None:
    shown = [form for form in FORBIDDEN if form in text]
    assert not shown, f"a secret form {shown} was written: {text[-2000:]}"


@pytest.mark.parametrize("kind", sorted(CREDENTIALS))
def test_retries_and_a_strict_rejection_show_no_secret(
    kind: str, make_rig: Callable[[], ForwardingRig], emulator: Emulator
) -> None:
    rig = make_rig()
    _produce_imports(rig, 5)
    rig.produce_rejected_import()
    emulator.client.fail_next(2, 500, endpoints=["import"])
    emulator.client.fail_next(1, 429, endpoints=["import"], retry_after=0.1)

    code, stderr = _run_at_debug(rig, _config(rig, CREDENTIALS[kind]))

    assert code == 0, stderr
    requests = emulator.client.stats()["requests"]["import"]
    assert (requests.get("500"), requests.get("429")) == (2, 1), requests
    assert emulator.client.stats()["accepted"]["import"] == 5
    assert "DEBUG" in stderr, "the forwarder ran at DEBUG: its most talkative log was read"
    _assert_hidden(stderr)
    [dead_letter] = rig.dead_letters(1)
    assert dict(dead_letter.headers)["dead-letter-http-status"] == b"400"
    _assert_hidden(_everything_written([dead_letter]))


@pytest.mark.parametrize(
    ("kind", "credential", "refusal"),
    [
        (
            "service account",
            {**CREDENTIALS["service account"], "service_account_secret": f"{SA_SECRET}-old"},
            "Mixpanel refused the service account 'sa-user'",
        ),
        (
            "service account in another project",
            {**CREDENTIALS["service account"], "project_id": "999"},
            "Mixpanel refused the service account 'sa-user'",
        ),
        ("api secret", {"api_secret": f"{API_SECRET}-old"}, "Mixpanel refused the api secret"),
    ],
    ids=["service account", "service account in another project", "api secret"],
)
def test_refused_credentials_show_no_secret(
    kind: str,
    credential: dict[str, str],
    refusal: str,
    make_rig: Callable[[], ForwardingRig],
    emulator: Emulator,
) -> None:
    rig = make_rig()
    _produce_imports(rig, 3)

    code, stderr = _run_at_debug(rig, _config(rig, credential))

    assert code == 1, stderr
    assert refusal in stderr, stderr
    assert emulator.client.stats()["accepted"]["import"] == 0
    _assert_hidden(stderr)
    # The refused ones hold the canary with a suffix: the canary forms cover them as written;
    # their own quoted and Basic forms are checked here.
    secret = credential.get("service_account_secret") or credential["api_secret"]
    user = credential.get("service_account_username")
    authorization = f"{user}:{secret}" if user else f"{secret}:"
    shown = [form for form in _shown_forms(secret, authorization) if form in stderr]
    assert not shown, f"{kind}: {shown} in {stderr[-2000:]}"
