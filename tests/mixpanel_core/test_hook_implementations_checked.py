"""A plugin's hook implementations are checked when it is registered.

Review E1: a hook with a parameter its hook does not give raised pluggy's own
``PluginValidationError`` (no ``MixpanelCoreError``: ``config check`` printed a traceback), and a
misspelled hook (``mixpanel_deliverd``) or one left without ``@hookimpl`` was never called, with
no word: a plugin counting deliveries counted nothing.
"""

from __future__ import annotations

import functools
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import MagicMock

import pytest

from mixpanel_core import Message, Mixpanel, Pipeline, hookimpl
from mixpanel_core.cli import main
from mixpanel_core.config import TransportConfig
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.errors import ConfigError
from mixpanel_core.testing import MemoryTransport, install_distribution


class WrongParameter:
    @hookimpl
    def mixpanel_enrich(self, msg: Message) -> None:
        raise AssertionError("never called")


class Misspelled:
    @hookimpl
    def mixpanel_deliverd(self, report: DeliveryReport) -> None:
        raise AssertionError("never called")


class Unmarked:
    def mixpanel_enrich(self, message: Message) -> None:
        raise AssertionError("never called")


class UnknownSpecname:
    @hookimpl(specname="mixpanel_observe")
    def observe(self, report: DeliveryReport) -> None:
        raise AssertionError("never called")


def _message_only(message: Message) -> None:
    raise AssertionError("never called")


class BuiltinNamedAsHook:
    """A builtin cannot be marked, and pluggy calls functions and methods only."""

    mixpanel_enrich = print


class SlotHoldingABuiltin:
    """Review R33: a value on the instance (here in a slot) is read as pluggy reads it."""

    __slots__ = ("mixpanel_enrich",)

    def __init__(self) -> None:
        self.mixpanel_enrich = print


class InstanceHoldingAStaticmethod:
    """A ``staticmethod`` object on an instance is used as it is: pluggy never calls it."""

    def __init__(self) -> None:
        self.mixpanel_enrich = hookimpl(staticmethod(_message_only))


class MarkedPartial:
    """pluggy calls functions and methods only: a marked ``partial`` was never called."""

    mixpanel_enrich = hookimpl(functools.partial(_message_only))


@pytest.mark.parametrize(
    ("plugin", "error"),
    [
        (
            WrongParameter(),
            "plugins.acme: mixpanel_enrich takes 'msg', which mixpanel_enrich does not give; it "
            "gives 'message', and an implementation takes any of them, by name",
        ),
        (
            Misspelled(),
            "plugins.acme: mixpanel_deliverd is marked @hookimpl but names no hook of "
            "mixpanel-core: did you mean mixpanel_delivered? (one meant for a later version "
            "takes @hookimpl(optionalhook=True))",
        ),
        (
            Unmarked(),
            "plugins.acme: mixpanel_enrich is not marked @hookimpl (from mixpanel_core import "
            "hookimpl), so it would never be called",
        ),
        (
            UnknownSpecname(),
            "plugins.acme: observe (specname 'mixpanel_observe') is marked @hookimpl but names "
            "no hook of mixpanel-core: the hooks are mixpanel_validate, mixpanel_enrich, "
            "mixpanel_route, mixpanel_delivered (one meant for a later version takes "
            "@hookimpl(optionalhook=True))",
        ),
        (
            MarkedPartial(),
            "plugins.acme: mixpanel_enrich is marked @hookimpl, but pluggy does not call it (it "
            "is of type partial): make it a method or a function",
        ),
        (
            BuiltinNamedAsHook(),
            "plugins.acme: mixpanel_enrich is named as a hook, but pluggy does not call it (it "
            "is of type builtin_function_or_method): make it a method or a function, marked "
            "@hookimpl",
        ),
        (
            SlotHoldingABuiltin(),
            "plugins.acme: mixpanel_enrich is named as a hook, but pluggy does not call it (it "
            "is of type builtin_function_or_method): make it a method or a function, marked "
            "@hookimpl",
        ),
        (
            InstanceHoldingAStaticmethod(),
            "plugins.acme: mixpanel_enrich is marked @hookimpl, but pluggy does not call it (it "
            "is of type staticmethod): make it a method or a function",
        ),
    ],
    ids=[
        "wrong parameter",
        "misspelled",
        "unmarked",
        "unknown specname",
        "marked partial",
        "builtin named as a hook",
        "builtin in a slot",
        "staticmethod on the instance",
    ],
)
def test_a_wrong_hook_implementation_is_a_config_error_naming_the_plugin(
    plugin: object, error: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Pipeline([("acme", plugin)], {"default": MemoryTransport()})
    assert str(caught.value) == error


class Lazy:
    """A lazy object (Django's settings): any attribute it is asked for runs its code."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"run by the checks: {name}")


class Right:
    """What pluggy calls: a subset of the parameters, a parameter with a default (never
    passed), a ``specname``, a hook of a later version (``optionalhook``), a property, a mock
    and a lazy object that must not be run, and a helper of its own named nearly as a hook
    (logged, once)."""

    mixpanel_client = Lazy()

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.mixpanel_api = MagicMock()  # review R32: neither taken for a mark nor refused

    @property
    def connection(self) -> object:
        raise AssertionError("a property is not run by the checks (review R30)")

    @functools.cached_property
    def mixpanel_validate(self) -> object:
        raise AssertionError("neither run nor taken for a hook left unmarked (review R31)")

    @hookimpl(optionalhook=True)
    def mixpanel_batch_delivered(self, reports: list[DeliveryReport]) -> None:
        raise AssertionError("no such hook here: never called")

    @hookimpl
    def mixpanel_route(self, transports: list[str], extra: int = 0) -> None:
        self.seen.append(f"route {list(transports)} {extra}")

    @hookimpl(specname="mixpanel_delivered")
    def count(self, report: DeliveryReport) -> None:
        self.seen.append(f"delivered {report.status.value}")

    def mixpanel_enriched(self, message: Message) -> None:
        raise AssertionError("a helper of its own, never called by pluggy")


def test_right_implementations_are_called_and_a_hook_like_helper_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plugin = Right()
    with caplog.at_level(logging.WARNING, logger="mixpanel_core.pipeline"):
        pipeline = Pipeline([("acme", plugin)], {"default": TransportConfig("memory")})
        Pipeline([("acme", Right())], {"default": TransportConfig("memory")})  # said once
    assert [r.getMessage() for r in caplog.records] == [
        "plugins.acme: mixpanel_enriched is not marked @hookimpl and names no hook: if it is "
        "meant as mixpanel_enrich, it is never called"
    ]
    with Mixpanel("tok", pipeline=pipeline) as client:
        client.track("user-1", "signup")
    assert plugin.seen == ["route ['default'] 0", "delivered accepted"]


SOURCE = textwrap.dedent(
    """
    from mixpanel_core import hookimpl


    class Counter:
        def __init__(self):
            self.count = 0

        @hookimpl
        def mixpanel_delivered(self, report, extra):
            self.count += 1
    """
)


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    install_distribution(
        tmp_path,
        "acme-hooks",
        {"mixpanel_core.plugins": {"counter": "acme_hooks:Counter"}},
        {"acme_hooks": SOURCE},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("acme_hooks", None)


def test_config_check_says_it_in_one_line(acme: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = acme / "mixpanel.toml"
    file.write_text('[plugins]\nenabled = ["counter"]\n[transports.default]\ntype = "memory"\n')
    assert main(["config", "check", str(file)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (
        "plugins.counter: mixpanel_delivered takes 'extra', which mixpanel_delivered does not "
        "give; it gives 'report', and an implementation takes any of them, by name"
    ) in err


class HelperA:
    def mixpanel_enriched(self) -> None: ...


class HelperB:
    def mixpanel_enriched(self) -> None: ...


def test_a_near_miss_is_said_once_for_each_class_given_as_a_plugin(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Review R31: plugins given as classes all counted as ``type``: one class's helper hid
    the same name in every other."""
    with caplog.at_level(logging.WARNING, logger="mixpanel_core.pipeline"):
        for plugin in (HelperA, HelperB, HelperA):
            Pipeline([("acme", plugin)], {"default": MemoryTransport()})
    assert len(caplog.records) == 2
