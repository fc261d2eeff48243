"""``beyond_signals``: run work that a signal handler must not stop half way."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


def beyond_signals(work: Callable[[], None]) -> None:
    """Run ``work`` where no signal handler can stop it half way, and wait for it.

    For ``close`` giving up on records it has taken out of everyone else's reach: a signal's
    ``SystemExit`` or a Ctrl-C raised in the middle (building the reports, writing the dead
    letters, a report callback, a log line) lost the rest with no report, dead letter or log
    line (99,950 of 100,000 records, in a review). Handlers run on the main thread only, so
    there ``work`` runs on a thread of its own; an interruption of the wait is held until
    ``work`` is done, then raised. (``Event.wait``, not ``join``: on Python 3.11 an
    interrupted ``join`` marks the thread it waits for as ended while it still runs.)
    """
    if threading.current_thread() is not threading.main_thread():
        work()
        return
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=run, name="mixpanel-core-give-up", daemon=True)
    try:
        worker.start()
    except RuntimeError:  # no new thread this late in the interpreter's shutdown
        run()
    held: BaseException | None = None
    while not done.is_set():
        try:
            done.wait()
        except BaseException as interruption:
            held = held or interruption
    if held is not None:
        if failure:
            logger.error("the work held from a signal failed too", exc_info=failure[0])
        raise held
    if failure:
        raise failure[0]
