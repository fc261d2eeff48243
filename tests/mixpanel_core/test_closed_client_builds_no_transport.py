"""A client closed before a transport was first used never builds it: a message after close
was taken by a new transport (with its sender thread and exit flush) when nothing had been
sent before close, and refused with a TransportError when something had."""

from __future__ import annotations

import pytest

from mixpanel_core import Mixpanel, TransportError
from mixpanel_core.config import config_from_mapping


def client() -> Mixpanel:
    config = config_from_mapping(
        {
            "mixpanel": {"token": "t", "api_host": "http://127.0.0.1:9"},
            "transports": {"direct": {"type": "buffered_http", "exit_timeout": 0}},
        }
    )
    return Mixpanel("t", config=config)


@pytest.mark.parametrize("used_before_close", [False, True])
def test_a_message_after_close_is_refused_whether_or_not_one_came_before(
    used_before_close: bool,
) -> None:
    mp = client()
    if used_before_close:
        mp.track("u", "before")
    mp.close(timeout=0.5)

    with pytest.raises(TransportError, match="'direct' is closed"):
        mp.track("u", "after")


def test_a_transport_may_still_build_the_one_it_hands_messages_to_after_close() -> None:
    """A multiprocessing_queue whose close a signal interrupted leaves its messages to the
    exit close, which hands them to its fallback, built then: refused, they were reported
    FAILED rather than delivered (review R34)."""
    config = config_from_mapping(
        {"transports": {"default": {"type": "memory"}, "fallback": {"type": "memory"}}}
    )
    pipeline = Mixpanel("t", config=config).pipeline
    pipeline.close()

    with pytest.raises(TransportError, match="'fallback' is closed"):
        pipeline.transport("fallback")
    assert pipeline.transport("fallback", needed_by="default") is not None
