"""Every error of mixpanel-core crosses a process as it was raised: its type, its text and
its attributes.

``Exception`` pickles an error as its class called with its text, which these constructors do
not take: a ``ValidationError`` came back from a ``multiprocessing`` worker (or a Celery task)
with its text spelt out letter by letter, and a ``PluginError`` could not be unpickled at all,
which stopped the ``Pool``'s result thread: its caller waited for ever.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle

import pytest

from mixpanel_core.commands.errors import CommandError, InputError
from mixpanel_core.compat import MixpanelException
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator.config import EmulatorError
from mixpanel_core.errors import (
    AuthenticationError,
    BuildFailedError,
    ConfigError,
    DeliveryError,
    MixpanelCoreError,
    NotJSONError,
    NotYetDeliveredError,
    PartialSendError,
    PluginError,
    Problem,
    QueueFullError,
    TransportError,
    ValidationError,
)
from mixpanel_core.forwarder.config import ForwarderError
from mixpanel_core.forwarder.dead_letters import DeadLetterTimeoutError
from mixpanel_core.kafka.broker import BrokerError
from mixpanel_core.messages import Event


def report() -> DeliveryReport:
    record = {"event": "signup", "properties": {"token": "t", "distinct_id": "u", "time": 1}}
    return DeliveryReport(
        Event(record), DeliveryStatus.REJECTED, "http", "properties.time: too old", 400, 2
    )


def compat_error() -> MixpanelException:
    error = MixpanelException("batch not accepted", reports=[report()])
    error.message, error.endpoint = '[{"event": "signup"}]', "events"
    return error


ERRORS: list[MixpanelCoreError] = [
    MixpanelCoreError("root"),
    ConfigError("[transports.http] timeout: must be above 0"),
    BuildFailedError("[transports.kafka]: NoBrokersAvailable"),
    ValidationError([Problem("properties.x", "must be a string"), Problem("event", "empty")]),
    NotJSONError([Problem("properties.when", "a set is not JSON")], "record"),
    PluginError("acme-enrich", "mixpanel_enrich", ValueError("boom"), "ValueError: <redacted>"),
    TransportError("no transport named 'kafak'"),
    PartialSendError(["http"], {"kafka": TransportError("closed")}),
    QueueFullError("queue full for 1.0s", waited=False),
    NotYetDeliveredError("3 records still being delivered", 3),
    DeliveryError("1 record rejected", [report()]),
    AuthenticationError("Mixpanel refused the API secret (HTTP 401)", [report()]),
    compat_error(),
    ForwarderError("poison record at offset 7"),
    DeadLetterTimeoutError("dead-letter topic did not answer"),
    CommandError("no such file"),
    InputError("line 3: not JSON"),
    BrokerError("tansu would not start"),
    EmulatorError("port taken"),
]


def described(error: BaseException) -> tuple[object, ...]:
    """What a caller can read of ``error``."""
    attributes = {name: repr(value) for name, value in vars(error).items()}
    return type(error), str(error), repr(error), error.args, attributes


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_an_error_unpickled_is_the_error_pickled(error: MixpanelCoreError) -> None:
    assert described(pickle.loads(pickle.dumps(error))) == described(error)


def test_the_errors_listed_are_all_there_are() -> None:
    """A new error class is added to ``ERRORS`` too."""

    def subclasses(cls: type[MixpanelCoreError]) -> set[type[MixpanelCoreError]]:
        found = set(cls.__subclasses__())
        return found.union(*(subclasses(sub) for sub in found))

    assert subclasses(MixpanelCoreError) | {MixpanelCoreError} == {type(e) for e in ERRORS}


def fails(index: int) -> None:
    """In a worker process: raises the ``index``-th error."""
    raise ERRORS[index]


def test_an_error_raised_in_a_worker_process_reaches_its_caller_whole() -> None:
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        for index, error in enumerate(ERRORS):
            future = pool.submit(fails, index)
            with pytest.raises(type(error)) as raised:
                future.result(timeout=60)  # not for ever: an error that cannot be unpickled
            assert described(raised.value) == described(error)
