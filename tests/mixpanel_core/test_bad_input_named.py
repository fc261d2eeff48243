"""Bad input and bad configuration: refused with the key or field and the rule, nothing sent,
and no secret in the message."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from mixpanel_core import ConfigError, Mixpanel, hookimpl
from mixpanel_core.config import Config, RouteConfig, config_from_mapping
from mixpanel_core.errors import NotJSONError, PartialSendError, PluginError, TransportError
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.messages import Event, Message
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.plugin import PluginContext
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings
from mixpanel_core.testing import MemoryTransport

PASSWORD = "Pa55-w0rd-in-url"


@pytest.mark.parametrize(
    "mixpanel",
    [
        {"api_host": f"http://proxy:{PASSWORD}@127.0.0.1:8080"},
        {"api_host": f"proxy:{PASSWORD}@api.mixpanel.com"},
        {"urls": {"track": f"https://proxy:{PASSWORD}@example.com/track"}},
    ],
)
def test_credentials_in_a_url_are_refused_without_showing_them(mixpanel: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="credentials in the URL are not supported") as caught:
        config_from_mapping({"mixpanel": mixpanel})
    assert PASSWORD not in str(caught.value)
    assert ("api_host" if "api_host" in mixpanel else "urls.track") in str(caught.value)


@pytest.mark.parametrize(
    ("mixpanel", "missing"),
    [
        ({"service_account_username": "sa"}, "service_account_secret"),
        ({"service_account_secret": "s3cret"}, "service_account_username"),
        ({"service_account_username": "sa", "service_account_secret": "s3cret"}, "project_id"),
    ],
)
def test_half_a_service_account_is_refused_naming_what_is_missing(
    mixpanel: dict[str, Any], missing: str
) -> None:
    with pytest.raises(ConfigError, match=f"{missing}: required") as caught:
        config_from_mapping({"mixpanel": mixpanel})
    assert "s3cret" not in str(caught.value)


def test_plugin_options_and_settings_do_not_show_secrets_in_repr_or_asdict() -> None:
    context = PluginContext("redaction", FrozenDict(salt="salty-secret"))
    assert "salty-secret" not in repr(context)
    assert "salt" in repr(context)
    settings = MixpanelSettings(api_secret=Secret("api-secret-value"))
    assert "api-secret-value" not in repr(attrs.asdict(settings))


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"transports": {"d": {"type": "http", "read_timeout": math.nan}}}, "transports.d"),
        (
            {"forwarder": {"source": "bus", "shutdown_deadline": math.inf}},
            "forwarder.shutdown_deadline",
        ),
    ],
)
def test_nan_and_inf_in_the_file_are_config_errors_naming_the_key(
    table: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match="not a finite number") as caught:
        config_from_mapping(table)
    assert key in str(caught.value)


def test_negative_rate_limit_backoff_is_refused_naming_the_key() -> None:
    config = config_from_mapping({"transports": {"d": {"type": "http", "rate_limit_base": -1.0}}})
    with pytest.raises(ConfigError, match="rate_limit_base: must be 0 or more"):
        Pipeline.from_config(config).build_all()


def test_a_route_to_no_transport_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"routes\[0\]\.transport: must name at least one"):
        config_from_mapping(
            {"transports": {"d": {"type": "memory"}}, "routes": [{"transport": []}]}
        )


def test_a_router_answering_no_transport_raises_instead_of_losing_the_message() -> None:
    class Nowhere:
        @hookimpl
        def mixpanel_route(self, message: Message, transports: Sequence[str]) -> list[str]:
            return []

    memory = MemoryTransport()
    client = _with_plugin(memory, Nowhere())
    with pytest.raises(TransportError, match="empty list of transports"):
        client.track("u-1", "E")
    assert memory.messages == []


def _with_plugin(memory: MemoryTransport, plugin: object) -> Mixpanel:
    pipeline = Pipeline.from_config(Config(), {"default": memory}, [("test", plugin)])
    return Mixpanel("tok", pipeline=pipeline)


class Refusing(MemoryTransport):
    def send(self, message: Message) -> None:
        raise TransportError("full")


def test_a_message_refused_by_one_of_its_transports_still_reaches_the_others() -> None:
    first, refusing, last = MemoryTransport(), Refusing(), MemoryTransport()
    config = Config(
        transports=FrozenDict({"first": first, "refusing": refusing, "last": last}),
        routes=(RouteConfig(transport=("first", "refusing", "last")),),
    )
    client = Mixpanel("tok", config=config)
    with pytest.raises(PartialSendError) as caught:
        client.track("u-1", "E")
    assert caught.value.taken_by == ("first", "last")
    assert list(caught.value.errors) == ["refusing"]
    assert "taken by transports: first, last; refused by refusing: TransportError: full" in str(
        caught.value
    )
    assert len(first.messages) == len(last.messages) == 1


def test_an_enricher_cannot_put_nan_on_the_wire() -> None:
    class Ratio:
        @hookimpl
        def mixpanel_enrich(self, message: Message) -> Message | None:
            assert isinstance(message, Event)
            return message.with_properties({"ratio": math.nan})

    memory = MemoryTransport()
    client = _with_plugin(memory, Ratio())
    # The enricher's NotJSONError is its plugin's failure: a PluginError naming it, the
    # NotJSONError (naming the field) kept as the cause.
    with pytest.raises(
        PluginError, match=r"properties\.ratio: nan is not a finite number"
    ) as caught:
        client.track("u-1", "E")
    assert caught.value.plugin == "test"
    assert isinstance(caught.value.__cause__, NotJSONError)
    assert memory.messages == []


def test_a_value_that_holds_itself_is_refused_not_a_recursion_error() -> None:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    memory = MemoryTransport()
    with pytest.raises(NotJSONError, match="holds itself"):
        Mixpanel("tok", memory).track("u-1", "E", {"looped": looped})
    assert memory.messages == []


def test_an_unwritable_dead_letter_path_is_refused_when_the_transport_is_built(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    config = config_from_mapping(
        {
            "transports": {
                "direct": {"type": "buffered_http", "dead_letter_path": f"{blocker}/dl.jsonl"}
            }
        }
    )
    with pytest.raises(ConfigError, match=r"transports\.direct\.dead_letter_path: cannot create"):
        Pipeline.from_config(config).build_all()
