"""A transport whose build failed is not built again by every message meanwhile.

A Kafka transport builds its producer when the first message needs it, and waits up to
``max_block_ms`` for a broker. With the broker down, each message built it again and waited as
long, one at a time under the transports' lock: three threads sending at once returned after
30, 60 and 90 s (review K2). Now a failed build is remembered: the messages that waited for it
are refused as soon as it fails, those after it at once, until it is tried again (1 s later,
doubling up to 30 s while it keeps failing), and then only by one message while the others are
refused at once. Every refused message is reported FAILED and raises, as before.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import BuildFailedError, MixpanelCoreError, TransportError
from mixpanel_core.hookspecs import hookimpl
from mixpanel_core.named_transports import REBUILD_AFTER, REBUILD_AFTER_MOST, _failed_again
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.testing import install_distribution

SLOW_BUILD = 1.0
"""Seconds a build waits for its broker before it fails (or succeeds, once it is up)."""

SLOW_BROKER = """
import time
from pathlib import Path
from mixpanel_core.errors import BuildFailedError, MixpanelCoreError, TransportError


class SlowBroker:
    '''Waits for its broker, then fails unless the file its options name exists.'''

    builds = 0

    @classmethod
    def from_config(cls, options, context):
        SlowBroker.builds += 1
        time.sleep(options["wait"])
        if not Path(options["up"]).exists():
            if options.get("own_error"):
                raise OSError("no brokers available")  # a client library's own
            raise TransportError("cannot reach Kafka at kafka:9092")
        return cls()

    def send(self, message):
        pass

    def flush(self, timeout=None):
        return []

    def close(self, timeout=None):
        return []
"""


class Observer:
    def __init__(self) -> None:
        self.reports: list[DeliveryReport] = []

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        self.reports.append(report)


@pytest.fixture
def slow_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type]:
    install_distribution(
        tmp_path,
        "acme-slow-broker",
        {"mixpanel_core.transports": {"slow_broker": "acme_slow_broker:SlowBroker"}},
        {"acme_slow_broker": SLOW_BROKER},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import acme_slow_broker  # type: ignore[import-not-found]

    yield acme_slow_broker.SlowBroker
    sys.modules.pop("acme_slow_broker", None)


def test_a_failed_build_is_not_waited_for_by_every_message(
    slow_broker: type, tmp_path: Path
) -> None:
    up = tmp_path / "broker-up"
    options = {"type": "slow_broker", "wait": SLOW_BUILD, "up": str(up)}
    config = config_from_mapping({"transports": {"bus": options}})
    observer = Observer()
    client = Mixpanel(
        "token",
        config=config,
        pipeline=Pipeline([("observer", observer)], config.transports, config),
    )
    errors: list[Exception] = []

    def track(n: int) -> None:
        try:
            client.track(f"user-{n}", "Signed up")
        except TransportError as exc:
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=track, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    took = time.monotonic() - started

    assert len(errors) == 4
    assert slow_broker.builds == 1  # the three that waited for it did not build again
    assert took < SLOW_BUILD * 2.5, took  # one build's wait, not four in turn
    assert sum("cannot reach Kafka at kafka:9092" in str(e) for e in errors) == 4
    assert sum("not built: its build failed" in str(e) for e in errors) == 3

    # Until it is tried again, a message is refused at once.
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"transports\.bus: not built: .* tried again in"):
        client.track("user-5", "Signed up")
    assert time.monotonic() - started < SLOW_BUILD / 2
    assert slow_broker.builds == 1

    # Then one message builds it again; it works now, and the transport is kept.
    up.touch()
    time.sleep(REBUILD_AFTER)
    client.track("user-6", "Signed up")
    client.track("user-7", "Signed up")
    assert slow_broker.builds == 2
    statuses = [r.status for r in observer.reports]
    assert statuses == [DeliveryStatus.FAILED] * 5  # each refused message, once
    client.close()


def test_a_build_failing_with_its_own_exception_is_remembered_too(
    slow_broker: type, tmp_path: Path
) -> None:
    """Review R13: a third-party ``from_config`` failing with its own exception (a
    ``BuildFailedError``, a ``ConfigError``, naming the table) was built again by every
    message: four threads, four builds in turn."""
    options = {
        "type": "slow_broker",
        "wait": SLOW_BUILD,
        "up": str(tmp_path / "no"),
        "own_error": 1,
    }
    config = config_from_mapping({"transports": {"bus": options}})
    client = Mixpanel("token", config=config)
    errors: list[Exception] = []

    def track(n: int) -> None:
        try:
            client.track(f"user-{n}", "Signed up")
        except MixpanelCoreError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=track, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert slow_broker.builds == 1
    # Each of the kind of the failure, the refusals too (review R14: they alternated between
    # a ConfigError and a TransportError for one mistake).
    assert all(isinstance(e, BuildFailedError) for e in errors), errors
    assert all("OSError: no brokers available" in str(e) for e in errors), errors
    client.close()


def test_the_wait_before_building_again_stays_bounded() -> None:
    """Review R13: after 1,025 failures in a row the doubling overflowed a float."""
    failure = None
    for _ in range(2000):
        failure = _failed_again(failure, TransportError("down"))
    assert failure is not None
    assert failure.retry_at - failure.at == REBUILD_AFTER_MOST
