"""Whether the running thread is a Kafka producer's network thread, which must never wait."""

from __future__ import annotations

import threading

from mixpanel_core.kafka.client_library import kafka_python

_current_thread = threading.current_thread


def on_network_thread() -> bool:
    """Whether this is a kafka-python producer's network (sender) thread, of any transport.

    Reports of acknowledgements and producer errors run there: it must never wait, since no
    acknowledgement reaches its producer meanwhile (and another thread waiting on it may be
    what it would wait for). Checked only where a wait would begin, never per record.
    """
    return isinstance(_current_thread(), kafka_python().producer.sender.Sender)
