"""``config check`` of a file whose transport raises when closed: one line, exit 1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.testing import install_distribution

SOURCE = """
class Transport:
    @classmethod
    def from_config(cls, options, context):
        return cls()

    def send(self, message):
        pass

    def flush(self, timeout=None):
        return ()

    def close(self, timeout=None):
        raise RuntimeError("the close of acme_closing broke")
"""


def test_a_transport_raising_when_closed_is_one_line_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_distribution(
        tmp_path,
        "acme-closing",
        {"mixpanel_core.transports": {"closing": "acme_closing:Transport"}},
        {"acme_closing": SOURCE},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "mixpanel.toml"
    config.write_text('[transports.default]\ntype = "closing"\n')

    try:
        assert main(["config", "check", str(config)]) == 1
    finally:
        sys.modules.pop("acme_closing", None)  # imported from tmp_path: not for other tests

    err = capsys.readouterr().err
    assert err == (
        f"mixpanel-core: error: {config}: a transport raised RuntimeError when closed after "
        "the check (run it from Python to see its traceback)\n"
    )
