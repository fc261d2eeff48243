"""The emulator in another process: EmulatorProcess, ``python -m`` and the ``emulator`` command."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from mixpanel_core.emulator import EmulatorClient, EmulatorError, EmulatorProcess
from mixpanel_core.emulator.command import READY_PREFIX, config_from_args, register, run
from mixpanel_core.emulator.config import DEFAULT_API_SECRET, DEFAULT_SERVICE_ACCOUNT

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]


def test_emulator_process_serves_from_a_child_and_stops_it(make_event: MakeEvent) -> None:
    with EmulatorProcess() as emulator:
        event = make_event()
        assert requests.post(emulator.base_url + "/track", json=event).text == "1"
        assert emulator.records("track") == [event]
        assert emulator.client.stats()["accepted"]["track"] == 1
        url = emulator.base_url
    with pytest.raises(EmulatorError, match="cannot reach"):
        EmulatorClient(url, timeout=2).stats()


def test_emulator_process_applies_every_setting(tmp_path: Path, make_event: MakeEvent) -> None:
    record_file = tmp_path / "records.jsonl"
    with EmulatorProcess(
        tokens=("tok-a", "tok-b"),
        api_secret="other-secret",
        service_account=("bot", "bot-secret"),
        project_id=777,
        max_body_bytes=50_000,
        record_file=record_file,
        max_records=2,
    ) as emulator:
        url = emulator.base_url
        ok = requests.post(url + "/track", json=[make_event(token="tok-b")] * 2)
        assert ok.text == "1"
        assert (
            requests.post(url + "/track", json=[make_event(token="tok-a")] * 3).status_code == 400
        )
        imported = requests.post(
            url + "/import",
            json=[make_event()],
            auth=("bot", "bot-secret"),
            params={"project_id": 777},
        )
        assert imported.status_code == 200
        assert requests.post(url + "/import", json=[], auth=("other-secret", "")).status_code == 200
        assert requests.post(url + "/track", data=b"x" * 60_000).status_code == 413
    assert len(record_file.read_bytes().splitlines()) == 3


def test_emulator_process_keeps_secrets_off_the_command_line() -> None:
    with EmulatorProcess(api_secret="argv-secret") as emulator:
        assert emulator._process is not None
        cmdline = Path(f"/proc/{emulator._process.pid}/cmdline").read_bytes()
    assert b"argv-secret" not in cmdline


def test_python_dash_m_prints_the_base_url_and_stops_on_sigterm(make_event: MakeEvent) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "mixpanel_core.emulator", "--port", "0", "--token", "cli-token"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith(READY_PREFIX)
        url = line[len(READY_PREFIX) :].strip()
        assert requests.post(url + "/track", json=make_event(token="cli-token")).text == "1"
        child.send_signal(signal.SIGTERM)
        assert child.wait(10) == 0
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_a_busy_port_makes_the_command_exit_2_with_a_message() -> None:
    with EmulatorProcess() as emulator:
        port = emulator.base_url.rsplit(":", 1)[1]
        done = subprocess.run(
            [sys.executable, "-m", "mixpanel_core.emulator", "--port", port],
            capture_output=True,
            check=False,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_register_adds_the_emulator_subcommand_with_every_option(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--token",
            "a",
            "--token",
            "b",
            "--api-secret",
            "s",
            "--service-account",
            "user:secret",
            "--project-id",
            "9",
            "--max-body-bytes",
            "1000",
            "--record-file",
            str(tmp_path / "r.jsonl"),
        ]
    )
    assert args.handler is run
    config = config_from_args(args)
    assert config.tokens == ("a", "b")
    assert config.api_secret == "s"
    assert config.service_account == ("user", "secret")
    assert config.project_id == "9"
    assert config.max_body_bytes == 1000
    assert config.record_file == tmp_path / "r.jsonl"


def test_service_account_option_must_be_user_colon_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["emulator", "--service-account", "no-colon"])
    assert "USER:SECRET" in capsys.readouterr().err


def test_record_file_of_a_child_is_plain_json_lines(tmp_path: Path, make_event: MakeEvent) -> None:
    path = tmp_path / "child.jsonl"
    with EmulatorProcess(record_file=path) as emulator:
        event = make_event()
        requests.post(emulator.base_url + "/track", json=event)
    assert [orjson.loads(line) for line in path.read_bytes().splitlines()] == [
        {"endpoint": "track", "record": event}
    ]


def test_environment_secrets_are_used_when_options_are_absent(make_event: MakeEvent) -> None:
    environment = {
        **os.environ,
        "MIXPANEL_EMULATOR_API_SECRET": "env-secret",
        "MIXPANEL_EMULATOR_SERVICE_ACCOUNT": "env-user:env-pass",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "mixpanel_core.emulator"],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline()[len(READY_PREFIX) :].strip()
        event = [make_event()]
        assert requests.post(url + "/import", json=event, auth=("env-secret", "")).ok
        sa = requests.post(
            url + "/import", json=event, auth=("env-user", "env-pass"), params={"project_id": 12345}
        )
        assert sa.ok
    finally:
        child.terminate()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


def test_empty_secret_variables_stand_for_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty MIXPANEL_EMULATOR_API_SECRET set an empty secret (matching nothing, so /import's
    legacy auth was refused) where an empty service-account variable meant the default."""
    monkeypatch.setenv("MIXPANEL_EMULATOR_API_SECRET", "")
    monkeypatch.setenv("MIXPANEL_EMULATOR_SERVICE_ACCOUNT", "")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    config = config_from_args(parser.parse_args(["emulator"]))
    assert config.api_secret == DEFAULT_API_SECRET
    assert config.service_account == DEFAULT_SERVICE_ACCOUNT


def test_a_malformed_service_account_variable_fails_the_emulator_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Read when the parser was built, it broke every sub-command (`plugins`, `config check`).
    monkeypatch.setenv("MIXPANEL_EMULATOR_SERVICE_ACCOUNT", "user-without-secret-S3CRET")
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    register(subparsers)
    subparsers.add_parser("other")
    assert parser.parse_args(["other"]) is not None
    with pytest.raises(SystemExit):
        parser.parse_args(["emulator"])
    error = capsys.readouterr().err
    assert "USER:SECRET" in error
    assert "MIXPANEL_EMULATOR_SERVICE_ACCOUNT" in error
    assert "S3CRET" not in error
