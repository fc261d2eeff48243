"""The callbacks of one record's future: its acknowledgement or its failure settles it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .log import logger

if TYPE_CHECKING:
    from .transport import KafkaTransport

_get_ident = threading.get_ident


class Settlement:
    """Both callbacks of one record's future: the acknowledgement or the failure settles it.

    One small object per record, where a bound method and a ``functools.partial`` for each
    callback were four: objects the garbage collector tracks, alive until the broker answers,
    which made it collect twice as often as a bare producer's sends do. It holds the transport
    itself, not only its bookkeeping: a transport dropped without ``close()`` lives on until
    every record it sent is settled (see ``KafkaTransport.__init__``).
    """

    __slots__ = ("_number", "_sender", "_transport", "attached")

    def __init__(self, transport: KafkaTransport, number: int) -> None:
        self._transport = transport
        self._number = number
        self._sender = _get_ident()
        self.attached = False
        """Set by ``send()`` once it attached both callbacks."""

    def __call__(self, outcome: object) -> None:
        if not self.attached and _get_ident() == self._sender:
            # kafka-python runs a finished future's callbacks at once, on the thread attaching
            # them: the broker answered before send() had asked to be told (its caller
            # descheduled in between). Not reported there, inside send(): a reporter waiting
            # for something that caller holds (a lock around track()) would wait for ever.
            # Not a daemon: the interpreter waits for it before the exit closes run, so the
            # report is made, not lost with the process.
            threading.Thread(
                target=self._settle_logged, args=(outcome,), name="mixpanel-core-kafka-report"
            ).start()
        else:
            self._settle(outcome)

    def _settle_logged(self, outcome: object) -> None:
        try:
            self._settle(outcome)
        except Exception:  # on the network thread, kafka-python logs what a callback raises
            logger.exception("transport %r: a delivery report failed", self._transport._name)

    def _settle(self, outcome: object) -> None:
        if isinstance(outcome, BaseException):
            self._transport._failed(self._number, outcome)
        else:
            self._transport._acks.acknowledged(self._number)
