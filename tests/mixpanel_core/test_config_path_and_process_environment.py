"""Which file is read, and which environment ``${VAR}`` comes from, as the reference says:
the path given, else ``$MIXPANEL_CORE_CONFIG``, else ``./mixpanel.toml``; the process's own
environment unless another is passed. Each test kills a mutant of ``config.py`` that survived
every other test (the others all pass an environment, or no path).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.config import config_from_mapping, config_path, load_config


def test_the_path_given_wins_over_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = tmp_path / "given.toml"
    given.write_text('[mixpanel]\ntoken = "given"\n')
    other = tmp_path / "from-env.toml"
    other.write_text('[mixpanel]\ntoken = "from-env"\n')
    monkeypatch.setenv("MIXPANEL_CORE_CONFIG", str(other))
    assert config_path(given) == given
    assert load_config(given, environ={}).mixpanel.token == "given"


def test_without_either_it_is_mixpanel_toml_in_the_current_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MIXPANEL_CORE_CONFIG", raising=False)
    assert config_path() == Path("mixpanel.toml")


def test_variables_come_from_the_process_environment_when_none_is_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MPC_TEST_TOKEN", "from-process")
    document = {"mixpanel": {"token": "${MPC_TEST_TOKEN}"}}
    assert config_from_mapping(document).mixpanel.token == "from-process"
    path = tmp_path / "mixpanel.toml"
    path.write_text('[mixpanel]\ntoken = "${MPC_TEST_TOKEN}"\n')
    assert load_config(path).mixpanel.token == "from-process"


def test_an_environment_passed_is_the_only_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPC_TEST_TOKEN", "from-process")
    document = {"mixpanel": {"token": "${MPC_TEST_TOKEN}"}}
    assert config_from_mapping(document, {"MPC_TEST_TOKEN": "given"}).mixpanel.token == "given"
