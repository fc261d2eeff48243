"""``close()`` on one thread while others post: no post that began before it fails for it.

``close()`` closes the session's pools. A post that had taken a pool (or a route to one) but
no connection from it yet met a closed pool: before, it was reported FAILED ("Pool is
closed") though nothing was sent, and a route saved as ``close()`` dropped the managers kept
a manager of closed pools, failing every later post to that URL until the next ``close()``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter

from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.messages import Endpoint

from .conftest import event, profile

SENDERS = 4
SECONDS = 1.5


def test_posts_racing_close_are_all_delivered(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    sent: Counter[str] = Counter()

    def send(k: int) -> None:
        while not stop.is_set():
            # A first post to a second endpoint now and then, as close() lands: its route is
            # saved anew after each close.
            endpoint: Endpoint = "engage" if k == 0 else "track"
            message = profile(n=k) if k == 0 else event()
            for report in client.send_batch(endpoint, [message]).reports:
                with lock:
                    sent[endpoint] += 1
                    outcomes[f"{report.status.name}: {report.reason or ''}"[:120]] += 1

    def close_often() -> None:
        while not stop.is_set():
            time.sleep(0.005)
            client.close()

    # Switching threads every microsecond puts close() inside a post's first steps often
    # (before: about one post in 30 failed).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threads = [threading.Thread(target=send, args=(k,)) for k in range(SENDERS)]
    threads.append(threading.Thread(target=close_often))
    try:
        for thread in threads:
            thread.start()
        time.sleep(SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        sys.setswitchinterval(interval)
        client.close()
    assert sum(sent.values()) > 100, sent  # the race ran
    assert list(outcomes) == ["ACCEPTED: "], outcomes
    accepted = mixpanel_emulator.stats()["accepted"]
    assert accepted["track"] == sent["track"]
    assert accepted["engage"] == sent["engage"]
