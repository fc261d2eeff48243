"""A plugin or transport that cannot be built from its table is a ConfigError naming the table.

Its ``from_config`` raising a ``KeyError`` (``context.options["region"]``) or its own
``ValueError`` went through raw: a transport's at the first ``track()``, which builds it, and
``mixpanel-core config check`` printed a traceback. A ``from_config`` returning something that is
not a transport failed as an ``AttributeError`` at its first use. The error's text may quote the
table, whose values are raw strings (a password is a ``Secret`` only once ``read``): each such
value is replaced by its key path.
"""

from __future__ import annotations

import re
import sys
import textwrap
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core import Mixpanel, Pipeline, TransportError
from mixpanel_core.cli import main
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.plugin import PluginContext, instantiate
from mixpanel_core.testing import install_distribution

SOURCE = textwrap.dedent(
    """
    from mixpanel_core import TransportError
    from mixpanel_core.errors import ConfigError


    class Region:
        @classmethod
        def from_config(cls, context):
            return cls(context.options["region"])  # a KeyError when the table lacks it

        def __init__(self, region):
            self.region = region


    class Pin:
        @classmethod
        def from_config(cls, context):
            return cls(int(context.options["pin"]))  # int() quotes the value it refuses

        def __init__(self, pin):
            self.pin = pin


    class Stubborn:
        def __init__(self):
            raise RuntimeError("no disk")


    class Precise:
        @classmethod
        def from_config(cls, context):
            raise ConfigError(f"{context.path}.zone: must be one of eu, us")


    class Flaky:
        @classmethod
        def from_config(cls, options, context):
            raise ValueError(f"cannot open {options['path']}: disk full")


    class Leaky:
        @classmethod
        def from_config(cls, options, context):
            secret = context.settings.api_secret.reveal()
            raise ValueError(f"bad credential {secret}")


    class Chained:
        @classmethod
        def from_config(cls, context):
            try:
                raise RuntimeError(f"login refused for {context.options['password']}")
            except RuntimeError as exc:
                raise ValueError("could not log in") from exc


    class Grouped:
        @classmethod
        def from_config(cls, context):
            refused = ConnectionError(f"login {context.options['password']} refused")
            raise ExceptionGroup("could not log in", [refused])


    class Noted:
        @classmethod
        def from_config(cls, context):
            error = ValueError("could not log in")
            error.add_note(f"tried {context.options['password']}")
            raise error


    class Declines:
        @classmethod
        def from_config(cls, options, context):
            raise TransportError("the broker is away")


    class Named:
        @classmethod
        def from_config(cls, options, context):
            # Named as our errors are, and quoting its password (review R23).
            raise TransportError(f"{context.path}: login refused for {options['password']}")


    class Careless:
        @classmethod
        def from_config(cls, context):
            raise ConfigError(f"{context.path}.password: {context.options['password']} is wrong")


    class NotATransport:
        @classmethod
        def from_config(cls, options, context):
            return "oops"
    """
)


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    plugins = {name: f"acme_build:{name.title()}" for name in ("region", "pin", "stubborn")}
    plugins["precise"] = "acme_build:Precise"
    plugins["chained"] = "acme_build:Chained"
    plugins["grouped"] = "acme_build:Grouped"
    plugins["noted"] = "acme_build:Noted"
    plugins["careless"] = "acme_build:Careless"
    transports = {
        "flaky": "acme_build:Flaky",
        "leaky": "acme_build:Leaky",
        "declines": "acme_build:Declines",
        "named": "acme_build:Named",
        "notatransport": "acme_build:NotATransport",
    }
    install_distribution(
        tmp_path,
        "acme-build",
        {"mixpanel_core.plugins": plugins, "mixpanel_core.transports": transports},
        {"acme_build": SOURCE},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("acme_build", None)


def plugin_config(name: str, options: dict[str, Any]) -> dict[str, Any]:
    return {
        "plugins": {"enabled": [name], name: options},
        "transports": {"default": {"type": "memory"}},
    }


def test_a_plugin_whose_from_config_raises_is_a_config_error_naming_it(acme: None) -> None:
    config = config_from_mapping(plugin_config("region", {"regino": "eu"}))
    with pytest.raises(ConfigError) as caught:
        Pipeline.from_config(config)
    assert str(caught.value) == "plugins.region: 'region' could not be built: KeyError: 'region'"
    assert isinstance(caught.value.__cause__, KeyError)


def test_a_plugin_whose_constructor_raises_is_a_config_error_naming_it(acme: None) -> None:
    config = config_from_mapping({"plugins": {"enabled": ["stubborn"]}})
    with pytest.raises(ConfigError, match=r"^plugins\.stubborn: 'stubborn' could not be built: "):
        Pipeline.from_config(config)


def test_a_plugin_config_error_is_raised_as_it_is(acme: None) -> None:
    config = config_from_mapping(plugin_config("precise", {}))
    with pytest.raises(ConfigError) as caught:
        Pipeline.from_config(config)
    assert str(caught.value) == "plugins.precise.zone: must be one of eu, us"
    assert caught.value.__cause__ is None


def test_the_error_quotes_no_value_of_the_table(acme: None) -> None:
    config = config_from_mapping(plugin_config("pin", {"pin": "hunter2-secret"}))
    with pytest.raises(ConfigError) as caught:
        Pipeline.from_config(config)
    assert "hunter2-secret" not in str(caught.value)
    assert "'<plugins.pin.pin>'" in str(caught.value)
    assert str(caught.value).startswith("plugins.pin: 'pin' could not be built: ValueError: ")


def test_instantiate_wraps_what_from_config_raises() -> None:
    class Broken:
        @classmethod
        def from_config(cls, context: PluginContext) -> Broken:
            raise LookupError(f"no {context.options['zone']} zone here")

    # "arctic" is in "antarctica": the longer value is replaced whole. A value under a key
    # that names no credential (``zone``) is left: it is no secret, and says what went wrong.
    context = PluginContext(
        "broken", FrozenDict(zone="antarctica", token="arctic", secret_zone="antarctica")
    )
    with pytest.raises(ConfigError) as caught:
        instantiate(Broken, context)
    assert str(caught.value).startswith(
        "plugins.broken: 'broken' could not be built: LookupError: no <plugins.broken.secret_zone>"
        " zone here (raised at "
    )
    assert caught.value.__cause__ is None  # its text, printed by a traceback, held a secret


def test_a_transport_whose_from_config_raises_is_a_config_error_when_built(acme: None) -> None:
    path = "/var/lib/acme/archive.jsonl"
    config = config_from_mapping({"transports": {"archive": {"type": "flaky", "path": path}}})
    client = Mixpanel("tok", pipeline=Pipeline.from_config(config))
    with pytest.raises(ConfigError) as caught:
        client.track("user-1", "E")
    assert str(caught.value) == (
        "transports.archive: 'flaky' could not be built: ValueError: cannot open "
        "/var/lib/acme/archive.jsonl: disk full"  # a path is no secret
    )
    assert isinstance(caught.value.__cause__, ValueError)


def test_a_transport_error_quotes_no_mixpanel_credential(acme: None) -> None:
    data = {
        "mixpanel": {"api_secret": "APISECRET-123"},
        "transports": {"default": {"type": "leaky"}},
    }
    pipeline = Pipeline.from_config(config_from_mapping(data))
    with pytest.raises(ConfigError) as caught:
        pipeline.build_all()
    assert "APISECRET-123" not in str(caught.value)
    assert "bad credential <mixpanel.api_secret> (raised at " in str(caught.value)


def test_a_transport_error_is_redacted_with_the_settings_it_was_built_with(acme: None) -> None:
    """A pipeline given another configuration before building: the credential the transport
    was handed is the one redacted (the split of the pipeline kept the first one for it)."""
    first = {"mixpanel": {"api_secret": "FIRST-1"}, "transports": {"default": {"type": "leaky"}}}
    pipeline = Pipeline.from_config(config_from_mapping(first))
    pipeline.config = config_from_mapping({**first, "mixpanel": {"api_secret": "SECOND-2"}})
    with pytest.raises(ConfigError) as caught:
        pipeline.build_all()
    assert "bad credential <mixpanel.api_secret> (raised at " in str(caught.value)


def test_a_credential_in_what_from_config_raised_reaches_no_traceback(acme: None) -> None:
    """Found by a review: the text was redacted, but the exception the plugin raised was kept
    as ``__cause__``, and every traceback of the error (an uncaught one, ``logging.exception``)
    printed the credential whole. It is now left out, and the text says where it was raised."""
    data = {
        "mixpanel": {"api_secret": "APISECRET-123"},
        "transports": {"default": {"type": "leaky"}},
    }
    with pytest.raises(ConfigError) as caught:
        Pipeline.from_config(config_from_mapping(data)).build_all()
    printed = "".join(traceback.format_exception(caught.value))
    assert "APISECRET-123" not in printed
    assert caught.value.__cause__ is None
    assert re.search(r"\(raised at .*acme_build\.py:\d+\)$", str(caught.value))


@pytest.mark.parametrize("name", ["chained", "grouped", "noted"])
def test_a_credential_in_an_exception_chained_to_what_was_raised_reaches_no_traceback(
    acme: None, name: str
) -> None:
    """In an exception it chains, in one of an ``ExceptionGroup``, in a note: a traceback
    prints each of them whole (review R6 showed the last two printed)."""
    config = config_from_mapping(plugin_config(name, {"password": "hunter2-secret"}))
    with pytest.raises(ConfigError) as caught:
        Pipeline.from_config(config)
    assert "hunter2-secret" not in "".join(traceback.format_exception(caught.value))
    assert caught.value.__cause__ is None
    assert "(raised at " in str(caught.value)


def test_a_chained_credential_leaves_the_text_of_what_was_raised(acme: None) -> None:
    config = config_from_mapping(plugin_config("chained", {"password": "hunter2-secret"}))
    with pytest.raises(ConfigError) as caught:
        Pipeline.from_config(config)
    assert str(caught.value).startswith(
        "plugins.chained: 'chained' could not be built: ValueError: could not log in (raised at "
    )


def test_a_transport_error_from_from_config_stays_one_naming_the_transport(acme: None) -> None:
    """Review N1: it was raised as it was, naming no transport, where the refusals after it
    name it ("transports.default: not built: ...")."""
    data = {"transports": {"default": {"type": "declines"}}}
    pipeline = Pipeline.from_config(config_from_mapping(data))
    with pytest.raises(TransportError) as caught:
        pipeline.build_all()
    assert str(caught.value) == (
        "transports.default: 'declines' could not be built: TransportError: the broker is away"
    )
    assert not isinstance(caught.value, ConfigError)  # an outage, not a configuration error
    assert str(caught.value.__cause__) == "the broker is away"


def test_an_error_of_ours_a_third_party_raises_quoting_a_credential_is_redacted(
    acme: None,
) -> None:
    """Review R23: one that named its table as ours do ("transports.default: ...") was taken
    for ours and raised as it was, the password in it and in every refusal after it; and what
    was raised stayed the new error's ``__context__``."""
    data = {"transports": {"default": {"type": "named", "password": "Hunter2-pass-9f8e7d"}}}
    pipeline = Pipeline.from_config(config_from_mapping(data))
    for attempt in range(2):  # the build, then the refusal remembered from it
        with pytest.raises(TransportError) as caught:
            pipeline.build_all() if attempt == 0 else pipeline.transport("default")
        printed = "".join(traceback.format_exception(caught.value))
        assert "Hunter2" not in printed, printed
        assert "<transports.default.password>" in str(caught.value)
        if attempt == 0:
            assert caught.value.__cause__ is None
            assert caught.value.__context__ is None

    config = config_from_mapping(plugin_config("careless", {"password": "Hunter2-pass-9f8e7d"}))
    with pytest.raises(ConfigError) as refused:
        Pipeline.from_config(config)
    assert str(refused.value).startswith(
        "plugins.careless.password: <plugins.careless.password> is wrong (raised at "
    )
    assert refused.value.__cause__ is None
    assert refused.value.__context__ is None


def test_a_from_config_returning_what_is_not_a_transport_is_a_config_error(acme: None) -> None:
    data = {"transports": {"archive": {"type": "notatransport"}}}
    client = Mixpanel("tok", pipeline=Pipeline.from_config(config_from_mapping(data)))
    with pytest.raises(ConfigError) as caught:
        client.track("user-1", "E")
    assert str(caught.value) == (
        "transports.archive.type: 'notatransport' built an object of type str, not a transport "
        "(send, flush, close)"
    )


def test_config_check_prints_one_line(
    acme: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "mixpanel.toml"
    file.write_text(
        '[plugins]\nenabled = ["region"]\n[plugins.region]\nregino = "eu"\n'
        '[transports.default]\ntype = "memory"\n'
    )
    assert main(["config", "check", str(file)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "plugins.region: 'region' could not be built: KeyError: 'region'" in err


def test_a_credential_in_a_syntax_errors_source_line_reaches_no_traceback() -> None:
    """Review R14: read from the exception's texts only, a ``SyntaxError``'s source line (it
    prints the text it could not parse, apart from its message) was missed, and the error kept
    it as its cause: ``logging.exception`` printed the secret."""
    import ast

    class Parses:
        @classmethod
        def from_config(cls, context: PluginContext) -> Parses:
            ast.literal_eval(context.options["auth_headers"])
            return cls()

    context = PluginContext(
        "parses", FrozenDict(auth_headers="{'Authorization': Bearer SEKRET-9f3a}")
    )
    with pytest.raises(ConfigError) as caught:
        instantiate(Parses, context)
    assert caught.value.__cause__ is None
    printed = "".join(traceback.format_exception(caught.value))
    assert "SEKRET-9f3a" not in printed
