"""Two distributions declaring one entry-point name: refused when loaded, never a silent pick.

Each test writes real installed distributions (a ``NAME-VERSION.dist-info`` with ``METADATA``
and ``entry_points.txt``, plus modules) into directories it puts on ``sys.path``; the
registry finds them through ``importlib.metadata`` as it would find what pip installed.
"""

from __future__ import annotations

import functools
import importlib.metadata
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core import Mixpanel, registry
from mixpanel_core.cli import main
from mixpanel_core.config import Config, config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.registry import PLUGIN_GROUP, TRANSPORT_GROUP, load
from mixpanel_core.testing import install_distribution

CORE = f"mixpanel-core {importlib.metadata.version('mixpanel-core')}"

# A transport that takes nothing and says so: enough to load and build.
TRANSPORT_SOURCE = """
class Transport:
    @classmethod
    def from_config(cls, options, context):
        return cls()

    def send(self, message):
        pass

    def flush(self, timeout=None):
        return ()

    def close(self, timeout=None):
        return ()


class NoLimits:
    pass
"""


def write_distribution(
    directory: Path,
    name: str,
    version: str,
    entry_points: Mapping[str, Mapping[str, str]],
    modules: Mapping[str, str] = {},  # a Mapping: never mutated, so one default is safe
) -> None:
    """``testing.install_distribution`` with the version before the entry points."""
    install_distribution(directory, name, entry_points, modules, version)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh directory on ``sys.path`` for distributions; the registry's memory cleared."""
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    registry._scan.cache_clear()
    names = set(sys.modules)
    yield directory
    registry._scan.cache_clear()
    for module in set(sys.modules) - names:
        if module.startswith("acme_"):
            del sys.modules[module]


def test_two_distributions_declaring_one_transport_name_is_refused_naming_both(
    site: Path,
) -> None:
    write_distribution(
        site,
        "acme-one",
        "1.0",
        {TRANSPORT_GROUP: {"clashy": "acme_one:Transport"}},
        {"acme_one": TRANSPORT_SOURCE},
    )
    write_distribution(
        site,
        "acme-two",
        "2.5",
        {TRANSPORT_GROUP: {"clashy": "acme_two:Transport"}},
        {"acme_two": TRANSPORT_SOURCE},
    )
    with pytest.raises(ConfigError) as caught:
        load(TRANSPORT_GROUP, "clashy", "transports.out.type")
    message = str(caught.value)
    assert message.startswith("transports.out.type: 2 installed distributions declare a ")
    assert "transport named 'clashy'" in message
    assert "acme-one 1.0 (acme_one:Transport)" in message
    assert "acme-two 2.5 (acme_two:Transport)" in message
    assert "uninstall all but one" in message
    # Neither module was imported: refusing comes before running either's code.
    assert "acme_one" not in sys.modules
    assert "acme_two" not in sys.modules


def test_a_distribution_declaring_a_builtin_name_does_not_replace_it_silently(
    site: Path,
) -> None:
    """The reviewer's case: ``mixpanel_limits`` and ``http`` declared by another
    distribution replaced validation and the HTTP transport, whichever sys.path found last."""
    write_distribution(
        site,
        "zzz-acme-clash",
        "1.0",
        {
            PLUGIN_GROUP: {"mixpanel_limits": "acme_clash:NoLimits"},
            TRANSPORT_GROUP: {"http": "acme_clash:Transport"},
        },
        {"acme_clash": TRANSPORT_SOURCE},
    )
    with pytest.raises(ConfigError) as caught:
        Pipeline.from_config(config_from_mapping({"transports": {"m": {"type": "memory"}}}))
    message = str(caught.value)
    assert message.startswith("plugins.enabled: mixpanel_limits: 2 installed distributions")
    assert f"{CORE} (plugins.mixpanel_limits:MixpanelLimits)" in message
    assert "zzz-acme-clash 1.0 (acme_clash:NoLimits)" in message

    pipeline = Pipeline.from_config(
        config_from_mapping(
            {"plugins": {"enabled": []}, "transports": {"default": {"type": "http"}}}
        )
    )
    with pytest.raises(ConfigError) as caught:
        pipeline.build_all()
    message = str(caught.value)
    assert message.startswith("transports.default.type: 2 installed distributions")
    assert f"{CORE} (transports.http:HttpTransport)" in message
    assert "zzz-acme-clash 1.0 (acme_clash:Transport)" in message

    # Review N1: Mixpanel(token) with no transport configured is refused too, and the key
    # said is none the user wrote: said whose transport it is.
    client = Mixpanel("tok", config=Config(plugins=()))
    with pytest.raises(ConfigError) as caught:
        client.pipeline.build_all()
    assert str(caught.value).startswith(
        "transports.default.type (the transport a client sends through when none is "
        "configured): 2 installed distributions declare a transport named 'http'"
    )


def test_names_not_loaded_are_unaffected_by_a_clash(site: Path) -> None:
    write_distribution(site, "acme-one", "1.0", {TRANSPORT_GROUP: {"clashy": "acme_one:T"}})
    write_distribution(site, "acme-two", "1.0", {TRANSPORT_GROUP: {"clashy": "acme_two:T"}})
    pipeline = Pipeline.from_config(config_from_mapping({"transports": {"m": {"type": "memory"}}}))
    pipeline.build_all()
    assert type(pipeline.transport("m")).__name__ == "MemoryTransport"
    pipeline.close(timeout=1)


def test_one_distribution_found_twice_on_sys_path_is_not_a_clash(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editable install reachable through two sys.path entries is one declaration
    (``importlib.metadata`` yields each distribution once: a guard that it stays so)."""
    again = tmp_path / "again"
    for directory in (site, again):
        directory.mkdir(exist_ok=True)
        write_distribution(
            directory,
            "acme-twice",
            "1.0",
            {TRANSPORT_GROUP: {"twice": "acme_twice:Transport"}},
            {"acme_twice": TRANSPORT_SOURCE},
        )
    monkeypatch.syspath_prepend(str(again))
    loaded = load(TRANSPORT_GROUP, "twice", "transports.t.type")
    assert isinstance(loaded, type)
    assert loaded.__name__ == "Transport"


def test_two_distributions_declaring_the_same_target_are_not_a_clash(site: Path) -> None:
    """Both name one and the same object: nothing depends on which is found first."""
    write_distribution(
        site,
        "acme-shared",
        "1.0",
        {TRANSPORT_GROUP: {"shared": "acme_shared:Transport"}},
        {"acme_shared": TRANSPORT_SOURCE},
    )
    write_distribution(
        site, "acme-alias", "1.0", {TRANSPORT_GROUP: {"shared": "acme_shared:Transport"}}
    )
    loaded = load(TRANSPORT_GROUP, "shared", "transports.t.type")
    assert isinstance(loaded, type)
    assert loaded.__name__ == "Transport"


def test_plugins_command_lists_every_declaration_and_marks_the_clash(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_distribution(
        site,
        "zzz-acme-clash",
        "1.0",
        {PLUGIN_GROUP: {"mixpanel_limits": "acme_clash:NoLimits"}},
        {"acme_clash": TRANSPORT_SOURCE},
    )
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    declared = [line.split() for line in lines if line.split()[:1] == ["mixpanel_limits"]]
    assert sorted(declared) == sorted(
        [
            ["mixpanel_limits", "acme_clash:NoLimits", "zzz-acme-clash", "1.0", "CLASH"],
            ["mixpanel_limits", "plugins.mixpanel_limits:MixpanelLimits", *CORE.split(), "CLASH"],
        ]
    )
    # Names declared once are listed once and not marked.
    router = [line for line in lines if line.split()[:1] == ["router"]]
    assert len(router) == 1
    assert "CLASH" not in router[0]
    assert any("plugin 'mixpanel_limits'" in line and "refused" in line for line in lines)


@pytest.mark.parametrize(
    "written", ["acme_spaced:Transport", "acme_spaced: Transport", "acme_spaced:Transport [x]"]
)
def test_one_target_written_two_ways_is_not_a_clash(site: Path, written: str) -> None:
    write_distribution(
        site,
        "acme-spaced",
        "1.0",
        {TRANSPORT_GROUP: {"spaced": "acme_spaced:Transport"}},
        {"acme_spaced": TRANSPORT_SOURCE},
    )
    write_distribution(site, "acme-respaced", "1.0", {TRANSPORT_GROUP: {"spaced": written}})
    loaded = load(TRANSPORT_GROUP, "spaced", "transports.t.type")
    assert isinstance(loaded, type)


def test_a_clash_uninstalled_since_the_last_look_no_longer_refuses(site: Path) -> None:
    """The error says to uninstall all but one: once done, the same process loads the name."""
    write_distribution(
        site,
        "acme-kept",
        "1.0",
        {TRANSPORT_GROUP: {"kept": "acme_kept:Transport"}},
        {"acme_kept": TRANSPORT_SOURCE},
    )
    write_distribution(site, "acme-gone", "1.0", {TRANSPORT_GROUP: {"kept": "acme_gone:T"}})
    with pytest.raises(ConfigError, match="2 installed distributions"):
        load(TRANSPORT_GROUP, "kept", "transports.t.type")
    for file in (site / "acme_gone-1.0.dist-info").iterdir():  # what pip uninstall does
        file.unlink()
    (site / "acme_gone-1.0.dist-info").rmdir()
    loaded = load(TRANSPORT_GROUP, "kept", "transports.t.type")
    assert isinstance(loaded, type)


def test_the_testing_helpers_memory_transport_is_a_name_of_the_module() -> None:
    """Loaded through its entry point at import, so run-time type hints resolve it."""
    import typing

    from mixpanel_core import testing

    assert "MemoryTransport" in vars(testing)
    hints = typing.get_type_hints(testing.memory_client)
    assert hints["return"] == tuple[testing.Mixpanel, testing.MemoryTransport]


def test_plugins_command_marks_an_entry_point_that_cannot_be_imported(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review U2: a broken entry point (its module missing, or not valid Python) was listed
    like any other; only a configuration enabling it showed that it could not be loaded."""
    write_distribution(
        site,
        "acme-broken",
        "1.0",
        {
            PLUGIN_GROUP: {"acme_gone": "acme_gone:Plugin"},
            TRANSPORT_GROUP: {"acme_bad": "acme_bad:Transport", "acme_ok": "acme_ok:Transport"},
        },
        {"acme_bad": "class Transport(:\n", "acme_ok": TRANSPORT_SOURCE},
    )
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [gone] = [line for line in lines if line.split()[:1] == ["acme_gone"]]
    assert gone.endswith("BROKEN (ModuleNotFoundError: No module named 'acme_gone')"), gone
    [bad] = [line for line in lines if line.split()[:1] == ["acme_bad"]]
    assert "BROKEN (SyntaxError: " in bad, bad
    [ok] = [line for line in lines if line.split()[:1] == ["acme_ok"]]
    assert "BROKEN" not in ok
    assert "BROKEN" not in "".join(line for line in lines if "mixpanel-core" in line)
    assert lines[-1] == (
        "BROKEN: transport 'acme_bad', plugin 'acme_gone' cannot be imported; a configuration "
        "that uses one of them is refused (ConfigError) until its distribution is fixed or "
        "uninstalled"
    )


def test_plugins_command_lists_on_past_a_module_that_exits_as_it_is_imported(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R12: a module calling ``sys.exit()`` at import ended the command there."""
    write_distribution(
        site,
        "acme-exits",
        "1.0",
        {PLUGIN_GROUP: {"acme_exits": "acme_exits:Plugin"}},
        {"acme_exits": "import sys\nsys.exit('no licence key')\n"},
    )
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    [exits] = [line for line in lines if line.split()[:1] == ["acme_exits"]]
    assert exits.endswith("BROKEN (SystemExit: no licence key)"), exits
    assert any(line.split()[:1] == ["router"] for line in lines)  # listed on past it


def test_a_transport_whose_module_exits_as_it_is_imported_is_a_config_error(site: Path) -> None:
    """Review R13: the SystemExit went through, and ended the application at its first
    ``track()``, silently, with exit code 0."""
    write_distribution(
        site,
        "acme-exits-transport",
        "1.0",
        {TRANSPORT_GROUP: {"acme_exits_t": "acme_exits_t:Transport"}},
        {"acme_exits_t": "import sys\nsys.exit('no licence key')\n"},
    )
    with pytest.raises(ConfigError, match="failed to import: SystemExit: no licence key"):
        load(TRANSPORT_GROUP, "acme_exits_t", "transports.t.type")


class _Killer:
    """A handler that is an object with ``__call__`` (review R16: its exit was swallowed)."""

    def __call__(self, signum: int, frame: object) -> None:
        raise SystemExit(143)


def _function_handler(signum: int, frame: object) -> None:
    raise SystemExit(143)


def _one_shot_handler(signum: int, frame: object) -> None:
    # Resets itself before it exits (review R16: gone by the time the import failed, it was
    # not found among the handlers installed then).
    signal.signal(signum, signal.SIG_DFL)
    raise SystemExit(143)


@pytest.mark.parametrize(
    "handler",
    [_function_handler, _Killer(), functools.partial(_Killer()), _one_shot_handler],
    ids=["function", "callable object", "partial of an object", "one-shot"],
)
def test_a_signal_handlers_exit_during_an_import_is_let_through(site: Path, handler: Any) -> None:
    """Review R14: a SIGTERM handler's ``sys.exit()``, run while a transport's module was being
    imported, became a ``ConfigError``, and the application went on running."""
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        write_distribution(
            site,
            "acme-interrupted",
            "1.0",
            {TRANSPORT_GROUP: {"acme_interrupted": "acme_interrupted:Transport"}},
            # A real SIGTERM to this process, delivered while the module is being imported.
            {
                "acme_interrupted": "import os, signal, time\n"
                "os.kill(os.getpid(), signal.SIGTERM)\n"
                "time.sleep(5)\n"
            },
        )
        with pytest.raises(SystemExit) as exited:
            load(TRANSPORT_GROUP, "acme_interrupted", "transports.t.type")
        assert exited.value.code == 143
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_module_exiting_from_its_own_function_at_import_is_a_config_error(site: Path) -> None:
    """Review R15: telling the module's own exit by its top-level frame let through one made
    from a function it calls (a licence check), and the application ended silently."""
    write_distribution(
        site,
        "acme-licence",
        "1.0",
        {TRANSPORT_GROUP: {"acme_licence": "acme_licence:Transport"}},
        {"acme_licence": "import sys\n\ndef check():\n    sys.exit('no licence')\n\ncheck()\n"},
    )
    with pytest.raises(ConfigError, match="failed to import: SystemExit: no licence"):
        load(TRANSPORT_GROUP, "acme_licence", "transports.t.type")


def test_an_exit_of_a_subclass_at_import_is_told_alike_by_load_and_the_command(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R18: ``plugins`` said ``MyExit: 7`` where ``load`` said ``SystemExit: 7``, and
    the ``ConfigError``'s context was our own ``ImportFailedError``, not the module's exit."""
    write_distribution(
        site,
        "acme-my-exit",
        "1.0",
        {TRANSPORT_GROUP: {"acme_my_exit": "acme_my_exit:Transport"}},
        {"acme_my_exit": "class MyExit(SystemExit):\n    pass\n\nraise MyExit(7)\n"},
    )
    with pytest.raises(ConfigError, match=r"failed to import: SystemExit: 7$") as refused:
        load(TRANSPORT_GROUP, "acme_my_exit", "transports.t.type")
    assert type(refused.value.__cause__).__name__ == "MyExit"
    assert refused.value.__context__ in (None, refused.value.__cause__)  # nothing of ours
    assert main(["plugins"]) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.split()[:1] == ["acme_my_exit"]]
    assert line.endswith("BROKEN (SystemExit: 7)"), line
