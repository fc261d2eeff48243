"""The rebalance listener: it only takes notes, and the main loop acts on them.

kafka-python calls the listener on its IO thread, where a blocking call (a synchronous commit)
raises. So the listener queues what changed; after each ``poll()`` the forwarder drops the
buffered records of revoked partitions and commits only from its main loop. Kafka does not
always hand those records out again: kafka-python keeps the fetch position of a partition
assigned back to the same consumer, so the forwarder seeks it back to its first record not
done (``Reassignment``, in ``reassignment``). ``$insert_id`` makes the second delivery harmless.
"""

from __future__ import annotations

import queue
from typing import Any

from mixpanel_core.kafka.client_library import kafka_python

Change = tuple[str, frozenset[Any]]
"""``("revoked" | "assigned", partitions)``."""


def rebalance_listener(changes: queue.SimpleQueue[Change]) -> Any:
    """A kafka-python ``ConsumerRebalanceListener`` that puts each change on ``changes``."""
    base: type[Any] = kafka_python().ConsumerRebalanceListener

    # kafka-python checks isinstance(listener, ConsumerRebalanceListener), hence the subclass.
    class NoteTakingListener(base):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            changes.put(("revoked", frozenset(revoked)))

        def on_partitions_assigned(self, assigned: Any) -> None:
            changes.put(("assigned", frozenset(assigned)))

    return NoteTakingListener()
