"""``Pipeline.flush`` and ``close`` reach every transport, even after one of them raised: the
others' threads, exit hooks and queued messages must not be left behind by a neighbour's
failure."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mixpanel_core import Pipeline, TransportError
from mixpanel_core.messages import Message


class Recording:
    """A transport that records which of flush and close ran; ``fails`` makes both raise."""

    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.ran: list[str] = []

    def send(self, message: Message) -> None:
        pass

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        return self._run("flush")

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        return self._run("close")

    def _run(self, verb: str) -> Sequence[Message]:
        self.ran.append(verb)
        if self.fails:
            raise TransportError(f"{verb} failed")
        return []


@pytest.mark.parametrize("verb", ["flush", "close"])
def test_a_transport_that_raises_does_not_spare_the_others(verb: str) -> None:
    first, failing, last = Recording(), Recording(fails=True), Recording()
    pipeline = Pipeline([], {"first": first, "failing": failing, "last": last})
    pipeline.build_all()
    with pytest.raises(TransportError, match=f"{verb} failed"):
        getattr(pipeline, verb)()
    assert (first.ran, failing.ran, last.ran) == ([verb], [verb], [verb])
