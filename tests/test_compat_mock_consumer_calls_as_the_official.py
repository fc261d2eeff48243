"""A ``MagicMock`` or ``Mock`` consumer, as tests written against the official client pass one:
its recorded calls are the sends alone. Reading ``send``'s signature with ``inspect`` (to know
whether it takes import credentials) probed the mock, and ``send.__eq__(type)`` and
``send.__eq__(object)`` calls showed in ``mock_calls``, breaking tests that compare them."""

from __future__ import annotations

from typing import Any
from unittest import mock

import mixpanel
import pytest

from mixpanel_core import compat


@pytest.mark.parametrize("mock_class", [mock.MagicMock, mock.Mock])
def test_a_mock_consumer_records_only_the_sends(mock_class: Any) -> None:
    consumer = mock_class()
    client = compat.Mixpanel("TOK", consumer)
    client.track("user-1", "Signed up", {"plan": "pro"})
    client.import_data("key", "user-1", "Old event", 1_700_000_000)
    assert [name for name, _, _ in consumer.mock_calls] == ["send", "send"]
    (endpoint, _, auth), _ = consumer.send.call_args
    assert (endpoint, auth) == ("imports", ("key", None))


@pytest.mark.parametrize("spec", ["spec", "spec_set"])
def test_a_consumer_whose_send_is_a_mock_specced_on_a_function_gets_the_official_calls(
    spec: str,
) -> None:
    """A mock specced on the official ``Consumer.send`` (self, endpoint, json_message,
    api_key, api_secret): inspect.signature raised on it, and the client took the consumer
    for a transport of its own, handing it messages."""
    consumer = mock.Mock()
    consumer.send = mock.Mock(**{spec: mixpanel.Consumer.send})
    client = compat.Mixpanel("TOK", consumer)
    client.track("user-1", "Signed up")
    client.import_data("key", "user-1", "Old event", 1_700_000_000)
    assert [c.args[0] for c in consumer.send.call_args_list] == ["events", "imports"]
    assert consumer.send.call_args.args[2] == ("key", None)
    assert [name for name, _, _ in consumer.send.mock_calls] == ["", ""]


def test_a_mock_specced_on_a_two_argument_send_is_not_handed_credentials() -> None:
    """Specced on a class's ``send(self, endpoint, json_message)``: ``self`` is not an
    argument the mock is called with, so it takes no third one."""

    class TwoArguments:
        def send(self, endpoint: str, json_message: str) -> None: ...

    consumer = mock.Mock()
    consumer.send = mock.Mock(spec=TwoArguments.send)
    client = compat.Mixpanel("TOK", consumer)
    client.import_data("key", "user-1", "Old event", 1_700_000_000)
    assert [len(c.args) for c in consumer.send.call_args_list] == [2]
