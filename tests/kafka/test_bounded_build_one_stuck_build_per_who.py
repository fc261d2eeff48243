"""A build that closing its network clients does not end (stuck somewhere else than on its
sockets) is kept to one per ``who``: the next by the same ``who`` fails at once, naming it,
rather than start one more thread beside it; another ``who``'s build is its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from mixpanel_core.errors import TransportError
from mixpanel_core.kafka.bounded_build import built_within

pytestmark = pytest.mark.integration


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end: the stuck builds end, and ``who`` may build again."""
    event = threading.Event()
    yield event
    event.set()


def test_a_build_stuck_past_abandon_is_kept_to_one_per_who(release: threading.Event) -> None:
    abandoned: list[str] = []
    closed: list[str] = []

    class Client:
        def close(self) -> None:
            closed.append("closed")

    def stuck() -> object:
        release.wait(30)
        return Client()

    def build(who: str) -> object:
        return built_within(0.2, stuck, who, ["127.0.0.1:9"], lambda: abandoned.append(who))

    with pytest.raises(TransportError, match=r"no broker answered within 0\.2s") as first:
        build("the admin client")
    assert "127.0.0.1:9" in str(first.value)
    assert abandoned == ["the admin client"]

    started = time.monotonic()
    with pytest.raises(TransportError) as again:
        build("the admin client")
    assert time.monotonic() - started < 0.2
    assert "an earlier build of it was given up and still waits" in str(again.value)
    assert abandoned == ["the admin client"]  # nothing was started, nothing to abandon

    with pytest.raises(TransportError, match="no broker answered"):
        build("another admin client")
    assert abandoned == ["the admin client", "another admin client"]

    # Once the stuck builds end, what they built is closed (nobody took it) and their who
    # builds again.
    release.set()
    deadline = time.monotonic() + 10
    while any(t.name.endswith("admin client") for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert closed == ["closed", "closed"]
    assert built_within(1.0, lambda: "client", "the admin client", ["127.0.0.1:9"]) == "client"
