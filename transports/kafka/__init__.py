"""``kafka``: produces each message to a Kafka topic; the forwarder delivers it to Mixpanel.

The record key is ``message.key`` (the distinct id, or ``group_key:group_id``) so one identity's
messages stay in order on one partition; the value is the wire record as compact JSON; headers
carry the endpoint, the schema version and the library version (``mixpanel_core.kafka.headers``).
A message is reported ACCEPTED only once the broker acknowledged it, FAILED when the producer
gives up on it. Per-call legacy ``/import`` credentials (``import_data(api_key=...)``) do not
travel through Kafka: the forwarder authenticates with its own ``[mixpanel]`` settings.

At most ``max_unacknowledged`` messages wait for acknowledgement (kafka-python 3.0's producer
has no memory bound of its own). ``flush()`` and ``close()`` make lingering records leave at
once; a message counts as settled for them only once its report has been made (also the
FAILED reports a ``close()`` on another thread is making), so when ``flush()`` returns nothing,
every message sent before it has its report. A reporter that calls them (on any kafka
transport) neither waits for nor gets back the message it is reporting, and waits for
acknowledgements only, never for reports other threads are making (two reporters would wait
for each other).

One rule keeps waits from forming a cycle: **a Kafka producer's network thread never waits.**
The report of an acknowledgement (or of a failure the producer reports after ``send()``
returned; one ``KafkaProducer.send`` raises is reported on the sending thread) runs on the
network thread of the producer that sent the message, and no acknowledgement reaches that
producer while it runs. From such a thread (any kafka-python producer's, so any kafka
transport's reports), ``flush()`` of any kafka transport returns at once what is still held,
``close()`` gives up at once on what is unacknowledged and closes its producer without waiting,
and ``send()`` that finds ``max_unacknowledged`` messages waiting refuses the message at once
(FAILED, ``TransportError``) instead of waiting for room. (One wait is kafka-python's own: the
first ``send()`` to a topic whose metadata the producer does not have yet waits for it, up to
the producer's ``max_block_ms``.) Every other wait is for acknowledgements, which network
threads then always make progress on. ``close()`` stays within its timeout (only the FAILED
reports it makes itself take longer): when that runs out it takes everything still
unacknowledged at once, so no report of an acknowledgement begins after that; a report another
thread began before and is still making when ``close()`` returns (a reporter slower than the
time left) ends later, and its message is not returned.
A bounded close runs at interpreter exit, also for a transport dropped without ``close()`` (it
lives until what it sent is settled). It waits for reports in progress within ``exit_timeout``
too, but not beyond: a report still being made on the producer's thread (or another daemon
thread) when it returns may not complete, as the interpreter ends those threads with it, and
its message is not counted in the warning. After ``fork()`` the child leaves the parent's
producer and records to the parent and builds its own producer.

A producer that can no longer deliver (kafka-python's fatal error state; an idempotent one that
lost its producer id and never asks for another; one holding a record past
``delivery_timeout_ms`` plus ``max_block_ms`` plus ``health.STUCK_MARGIN``) is replaced by a new one
with the same options: found when a record fails and by a watchdog thread once a second,
replaced on the next ``send()`` (never on a network thread) or by the watchdog; what the old
one held is reported FAILED, each message once (see ``replacement``).

The modules, each on one concern: ``transport`` (``KafkaTransport``: send, flush, close),
``acknowledgements`` (the records in flight, each reported once, what ``flush()`` and
``close()`` see), ``settlement`` (one record's callbacks), ``reports`` (making a report, and
which thread is making one), ``network_thread``, ``health`` (whether a producer can still
deliver), ``watchdog`` (the thread that looks), ``replacement`` (putting a new producer in
place of a broken one), ``producer`` (building, hurrying, closing and releasing one).

The parts a transport is made of (its acknowledgements, reports and replacement) hold no
reference to it: it is passed to each call that needs it, and the watchdog holds it weakly. A
transport dropped without ``close()`` lives only until what it sent is settled (each record's
``Settlement`` holds it until then); a part that kept it would keep it alive for ever.
"""

from .transport import KafkaTransport

__all__ = ["KafkaTransport"]
