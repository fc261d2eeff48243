"""An outside distribution extends mixpanel-core through entry points only.

``examples/third_party_plugin`` is built and installed (into a directory of its own, so the
test environment is not changed for other tests), then a separate Python process configures
its plugin and transport by name in TOML and uses both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "examples" / "third_party_plugin"

PROGRAM = """
import sys
from mixpanel_core import Mixpanel
with Mixpanel.from_config(sys.argv[1]) as mp:
    mp.track("user-1", "Signed up", {"plan": "pro"})
    mp.track("user-2", "Signed up", {"tenant": "explicit"})
    mp.people_set("user-1", {"a": 1})
    mp.alias("user-1-alias", "user-1")
    mp.merge(None, "user-1", "user-3")
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example distribution, built and installed into a directory of its own."""
    target = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    command += ["--no-build-isolation", "--target", str(target), str(PACKAGE)]
    subprocess.run(command, check=True)
    return target


def test_installed_third_party_plugin_and_transport_are_used(tmp_path: Path, site: Path) -> None:
    archive = tmp_path / "not-made-yet" / "archive.jsonl"
    config = tmp_path / "mixpanel.toml"
    config.write_text(
        f"""
[mixpanel]
token = "tok"

[plugins]
enabled = ["mixpanel_limits", "tenant"]
[plugins.tenant]
tenant = "acme-eu"

[transports.archive]
type = "jsonl_file"
path = "{archive}"
"""
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    subprocess.run([sys.executable, "-c", PROGRAM, str(config)], check=True, env=env)

    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    assert [line["endpoint"] for line in lines] == ["track", "track", "engage", "track", "import"]
    assert lines[0]["record"]["properties"]["tenant"] == "acme-eu"
    assert lines[1]["record"]["properties"]["tenant"] == "explicit"
    assert "tenant" not in lines[2]["record"]["$set"]
    # $create_alias and $merge are Event subclasses, but no events of the caller's: left alone.
    assert [line["record"]["event"] for line in lines[3:]] == ["$create_alias", "$merge"]
    assert all("tenant" not in line["record"]["properties"] for line in lines[3:])

    listing = subprocess.run(
        [sys.executable, "-m", "mixpanel_core.cli", "plugins"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert "tenant" in listing
    assert "acme_mixpanel.jsonl_file:JsonLinesFileTransport" in listing
    assert "acme-mixpanel 1.0.0" in listing


def test_a_bad_option_of_the_third_party_transport_names_its_key(
    tmp_path: Path, site: Path
) -> None:
    result = config_check(tmp_path, site, '[transports.archive]\ntype = "jsonl_file"\npth = "x"\n')
    assert result.returncode == 1
    assert "transports.archive.pth: unknown key" in result.stderr


def test_a_path_the_third_party_transport_cannot_write_names_its_key(
    tmp_path: Path, site: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a file where the transport's directory should be
    table = f'[transports.archive]\ntype = "jsonl_file"\npath = "{blocker}/x.jsonl"\n'
    result = config_check(tmp_path, site, table)
    assert result.returncode == 1
    assert f"transports.archive.path: cannot append to {blocker}/x.jsonl: " in result.stderr


def config_check(tmp_path: Path, site: Path, toml: str) -> subprocess.CompletedProcess[str]:
    """``mixpanel-core config check`` of ``toml``, with the example distribution installed."""
    config = tmp_path / "mixpanel.toml"
    config.write_text(toml)
    return subprocess.run(
        [sys.executable, "-m", "mixpanel_core.cli", "config", "check", str(config)],
        env={**os.environ, "PYTHONPATH": str(site)},
        check=False,
        capture_output=True,
        text=True,
    )
