"""Making one kafka transport's delivery reports, each thread counted while it makes one."""

from __future__ import annotations

import threading

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.messages import Message
from mixpanel_core.transport import ignore_report

_in_report = threading.local()
"""``depth``: how many delivery reports of any kafka transport this thread is making now. Such a
thread's ``flush()`` and ``close()`` wait for acknowledgements only, never for reports other
threads are making: two reporters each waiting for the other's report waited out their timeouts
(two refused sends, or two transports' producer threads each flushing both transports)."""


REFUSALS: dict[int, str] = {
    2: "CORRUPT_MESSAGE",
    3: "UNKNOWN_TOPIC_OR_PARTITION",
    10: "MESSAGE_TOO_LARGE",
    17: "INVALID_TOPIC_EXCEPTION",
    18: "RECORD_LIST_TOO_LARGE",
    21: "INVALID_REQUIRED_ACKS",
    29: "TOPIC_AUTHORIZATION_FAILED",
    31: "CLUSTER_AUTHORIZATION_FAILED",
    32: "INVALID_TIMESTAMP",
    35: "UNSUPPORTED_VERSION",
    42: "INVALID_REQUEST",
    43: "UNSUPPORTED_FOR_MESSAGE_FORMAT",
    44: "POLICY_VIOLATION",
    76: "UNSUPPORTED_COMPRESSION_TYPE",
    87: "INVALID_RECORD",
}
"""Kafka's error codes (and names) that say the broker refused a record and wrote nothing of
it; every try of the same record gets the same answer, so none before the last was written
either. Not among them: a timeout, a lost connection, and the refusals a retry may follow
(``NOT_LEADER_OR_FOLLOWER``, ``NOT_ENOUGH_REPLICAS``: an earlier try that timed out may have
been written), nor ``NOT_ENOUGH_REPLICAS_AFTER_APPEND``, said of a record written. By code,
not by kafka-python's class names, which change between its versions."""


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` says the broker refused the record (``REFUSALS``), so did not store it."""
    return (
        isinstance(exc, kafka_python().errors.BrokerResponseError)
        and getattr(exc, "errno", None) in REFUSALS
    )


def inside_a_report() -> bool:
    """Whether this thread is making a delivery report of any kafka transport now."""
    return getattr(_in_report, "depth", 0) > 0


class Reports:
    """The reports of the transport named ``name``, handed to ``reporter``."""

    def __init__(self, name: str, reporter: Reporter) -> None:
        self.name = name
        self._reporter = reporter
        self.observed = reporter is not ignore_report
        """Whether anybody reads them: if not, nothing waits for them to be made."""

    def accepted(self, message: Message) -> None:
        self.make(DeliveryReport(message, DeliveryStatus.ACCEPTED, self.name, attempts=1))

    def failure(self, message: Message, exc: BaseException) -> None:
        """What the producer's future failed with (or its ``send()`` raised).

        Only an answer of the broker's that says it refused the record (``refused``: too
        large, invalid, not authorized, unknown topic, ...) says that it did not store it.
        Anything else, a timeout above all, is the producer giving up, which does not say the
        broker did not store it: a request already on its way is still written by a broker
        that was only slow, and the forwarder delivers it (a review saw such records on the
        topic, reported "did not store it" after a ``RequestTimedOutError``: R70 F1).
        """
        said = f"{type(exc).__name__}: {exc}"
        if refused(exc):
            self.failed(message, f"Kafka did not store it: {said}")
        elif type(exc).__name__ == "KafkaTimeoutError":
            self.given_up(message, f"Kafka did not acknowledge it in time: {said}")
        else:
            self.given_up(message, f"Kafka did not acknowledge it: {said}")

    def given_up(self, message: Message, why: str) -> None:
        """Report FAILED a message given up on unacknowledged (``why``: by whom, and when):
        the broker may have stored it all the same, a request already sent being still
        written by a broker that was only slow, and the forwarder then delivers it. So the
        report says so, and is ``maybe_applied`` (see ``DeliveryReport``)."""
        self.failed(
            message,
            f"{why}; it may have been stored all the same, if a request carrying it had left "
            "(a broker that was only slow still writes it), and delivered to Mixpanel by the "
            "forwarder: a profile update such as $add sent again is applied twice",
            maybe_applied=True,
        )

    def failed(self, message: Message, reason: str, *, maybe_applied: bool = False) -> None:
        self.make(
            DeliveryReport(
                message,
                DeliveryStatus.FAILED,
                self.name,
                reason,
                attempts=1,
                maybe_applied=maybe_applied,
            )
        )

    def make(self, report: DeliveryReport) -> None:
        """Hand ``report`` to the reporter, this thread counted as making one meanwhile."""
        _in_report.depth = getattr(_in_report, "depth", 0) + 1
        try:
            self._reporter(report)
        finally:
            _in_report.depth -= 1
