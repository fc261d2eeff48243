"""The config router: first matching [[routes]] entry, by kind and endpoint; defaults without."""

from __future__ import annotations

import pytest

from mixpanel_core import ConfigError, Mixpanel
from mixpanel_core.config import config_from_mapping


def client_for(document: dict[str, object]) -> Mixpanel:
    return Mixpanel("token", config=config_from_mapping(document))


def kinds_in(client: Mixpanel, name: str) -> list[str]:
    return [m.kind for m in client.pipeline.transport(name).messages]  # type: ignore[attr-defined]


def test_routes_by_kind_and_endpoint_first_match_wins() -> None:
    client = client_for(
        {
            "transports": {n: {"type": "memory"} for n in ("bus", "imports", "rest")},
            "routes": [
                {"kinds": ["event"], "transport": "bus"},
                {"endpoints": ["import"], "transport": ["imports", "bus"]},
                {"transport": "rest"},
            ],
        }
    )
    client.track("u-1", "E")
    client.import_data(None, "u-1", "Old", 1_600_000_000)
    client.merge(None, "a-1", "b-1")
    client.people_set("u-1", {"a": 1})
    client.group_set("company", "acme", {"a": 1})
    assert kinds_in(client, "bus") == ["event", "import", "merge"]
    assert kinds_in(client, "imports") == ["import", "merge"]
    assert kinds_in(client, "rest") == ["people", "group"]


def test_without_routes_the_only_transport_or_default_is_used() -> None:
    only = client_for({"transports": {"solo": {"type": "memory"}}})
    only.track("u-1", "E")
    assert kinds_in(only, "solo") == ["event"]
    named = client_for({"transports": {"x": {"type": "memory"}, "default": {"type": "memory"}}})
    named.people_set("u-1", {"a": 1})
    assert kinds_in(named, "default") == ["people"]


def test_unmatched_message_is_a_clear_error_and_not_sent() -> None:
    client = client_for(
        {
            "transports": {"bus": {"type": "memory"}},
            "routes": [{"kinds": ["event"], "transport": "bus"}],
        }
    )
    with pytest.raises(ConfigError, match="no route takes people messages"):
        client.people_set("u-1", {"a": 1})
    assert kinds_in(client, "bus") == []


@pytest.mark.parametrize("table", [{}, {"routes": []}])
def test_a_plugins_router_table_is_an_error_even_empty(table: dict[str, object]) -> None:
    """docs/plugins.md: "It takes no options: a `[plugins.router]` table is a ConfigError".
    An empty one used to be accepted, as if it configured something."""
    document = {"plugins": {"router": table}, "transports": {"m": {"type": "memory"}}}
    with pytest.raises(ConfigError, match=r"plugins.router: the router takes no options") as e:
        client_for(document)
    assert "routes live in [[routes]]" in str(e.value)
