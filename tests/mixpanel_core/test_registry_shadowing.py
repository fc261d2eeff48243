"""An application's own ``plugins`` or ``transports`` package shadowing ours is named as such.

Our built-ins live in the top-level packages ``plugins`` and ``transports`` (DESIGN.md). An
application with a regular package of either name on ``sys.path`` ahead of site-packages (its
own directory, when run as ``python app.py``) is imported instead; the error must say that,
where from, and what to do, not only "No module named 'plugins.mixpanel_limits'".
(An application package that happens to hold a module of the very name imports without
error, and is not detected: telling whose a file is, in every way a distribution can be
installed, is not certain enough to refuse an import that works.)

The tests put a real directory first on ``sys.path`` and take ``plugins*``/``transports*``
out of ``sys.modules`` for their duration (restored afterwards, the very same modules), so the
import system finds the application's package exactly as it would in that application.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from mixpanel_core import registry
from mixpanel_core.cli import main
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.registry import PLUGIN_GROUP, load
from mixpanel_core.testing import memory_client

CORE = f"mixpanel-core {importlib.metadata.version('mixpanel-core')}"
OURS = Path(registry.__file__).resolve().parent.parent  # where ``plugins`` and ``transports`` are

WIDGET_SOURCE = """
class Widget:
    pass
"""


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The application's directory, first on ``sys.path``, with no ``plugins``/``transports``
    imported yet; on the way out, the modules that were imported are put back as they were."""
    directory = tmp_path / "app"
    directory.mkdir()
    ours = ("plugins", "transports", "acme_")
    kept: dict[str, ModuleType] = {
        name: module for name, module in sys.modules.items() if name.startswith(ours)
    }
    for name in kept:
        del sys.modules[name]
    monkeypatch.syspath_prepend(str(directory))
    registry._scan.cache_clear()
    try:
        yield directory
    finally:
        for name in [name for name in sys.modules if name.startswith(ours)]:
            del sys.modules[name]
        sys.modules.update(kept)
        registry._scan.cache_clear()


def test_an_application_plugins_package_is_named_as_what_shadows_the_builtins(app: Path) -> None:
    """t/app_with_plugins_pkg: ``memory_client()`` in an application with ``plugins/``."""
    (app / "plugins").mkdir()
    (app / "plugins" / "__init__.py").write_text("# the application's own plugins\n")
    with pytest.raises(ConfigError) as caught:
        memory_client()
    message = str(caught.value)
    assert message.startswith(
        "plugins.enabled: mixpanel_limits: 'mixpanel_limits' is installed but failed to import:"
        " No module named 'plugins.mixpanel_limits'; the package 'plugins' was imported from "
        f"{app / 'plugins' / '__init__.py'}, which has no 'plugins.mixpanel_limits': it hides"
        f" the one {CORE} installed ({OURS / 'plugins'}), being earlier on sys.path (the"
        " application's directory, the current directory, PYTHONPATH); rename it"
    )


def test_an_application_transports_package_is_named_as_what_shadows_the_builtins(
    app: Path,
) -> None:
    (app / "transports").mkdir()
    (app / "transports" / "__init__.py").write_text("")
    pipeline = Pipeline.from_config(
        config_from_mapping(
            {"plugins": {"enabled": []}, "transports": {"out": {"type": "console"}}}
        )
    )
    with pytest.raises(ConfigError) as caught:
        pipeline.build_all()
    message = str(caught.value)
    assert message.startswith(
        "transports.out.type: 'console' is installed but failed to import: No module named "
        "'transports.console'; the package 'transports' was imported from "
        f"{app / 'transports' / '__init__.py'}, which has no 'transports.console'"
    )


def test_config_check_run_with_the_application_on_sys_path_says_what_shadows(
    app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``config check`` builds every plugin: run as the application runs (its directory on
    ``sys.path``: ``python -m mixpanel_core.cli`` there) it fails as the application would."""
    (app / "plugins").mkdir()
    (app / "plugins" / "__init__.py").write_text("")
    (app / "mixpanel.toml").write_text('[transports.default]\ntype = "memory"\n')
    assert main(["config", "check", str(app / "mixpanel.toml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mixpanel-core: error: plugins.enabled: mixpanel_limits: ")
    assert f"'plugins' was imported from {app / 'plugins' / '__init__.py'}" in err


def test_the_testing_helpers_import_beside_an_application_transports_package(
    tmp_path: Path,
) -> None:
    """``mixpanel_core.testing`` finds ``MemoryTransport`` through its entry point: importing
    ``transports`` by name made the import itself fail, with no word of why."""
    app = tmp_path / "app"
    (app / "transports").mkdir(parents=True)
    (app / "transports" / "__init__.py").write_text("")
    script = (
        "import mixpanel_core.testing as testing\n"  # the import itself works
        "from mixpanel_core.errors import ConfigError\n"
        "try:\n"
        "    testing.MemoryTransport\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    # ``python -c`` puts the current directory first on sys.path, as ``python app.py`` does
    # the script's directory.
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=app, capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith(
        "mixpanel_core.testing.MemoryTransport: 'memory' is installed but failed to import: No "
        "module named 'transports.memory'; the package 'transports' was imported from "
        f"{app / 'transports' / '__init__.py'}"
    )


def test_a_module_missing_from_its_own_distribution_is_not_blamed_on_shadowing(
    app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale entry point (a module renamed, a wheel that left it out) names no culprit that
    is not there: no other package of that name on sys.path has the module either."""
    site = tmp_path / "site"
    (site / "acme_broken").mkdir(parents=True)
    (site / "acme_broken" / "__init__.py").write_text("")
    info = site / "acme_broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[mixpanel_core.plugins]\nbroken = acme_broken.limits:NoLimits\n"
    )
    # Another 'acme_broken' further along sys.path, without the module either: no culprit.
    other = tmp_path / "other"
    (other / "acme_broken").mkdir(parents=True)
    (other / "acme_broken" / "__init__.py").write_text("")
    monkeypatch.setattr(sys, "path", [*sys.path, str(site), str(other)])
    registry._scan.cache_clear()
    with pytest.raises(ConfigError) as caught:
        load(PLUGIN_GROUP, "broken", "plugins.enabled: broken")
    assert str(caught.value) == (
        "plugins.enabled: broken: 'broken' is installed but failed to import: No module named "
        "'acme_broken.limits'; the package 'acme_broken' "
        f"({site / 'acme_broken' / '__init__.py'}) has no 'acme_broken.limits', and no other "
        "'acme_broken' on sys.path has it: reinstall acme-broken 1.0"
    )
