"""The forwarder: consumes what the ``kafka`` transport produced and delivers it to Mixpanel.

At-least-once: a partition's offset is committed only past records Mixpanel accepted or that
were written to the dead-letter topic and acknowledged; ``$insert_id`` makes redeliveries
harmless. Each record's final outcome goes to the enabled plugins' ``mixpanel_delivered``.
Run it with ``mixpanel-core forward --config PATH``; see docs/forwarder.md.

========================  ===============================================================
module                    what it does
========================  ===============================================================
``config``                the ``[forwarder]`` table and what it resolves to
``decode``                a Kafka record back into a message, or the reason it cannot be
``offsets``               which offsets are done, per partition; what may be committed
``pending``               records waiting for delivery, per endpoint, with their linger
``dead_letters``          writing poison and rejected records to the dead-letter topic
``dead_lettering``        sending dead letters, waiting for their acknowledgements, settling
``rebalance``             the non-blocking rebalance listener
``reassignment``          acting on its notes: dropping, seeking back, a delivery out
``loop``                  ``Forwarder``: poll, decode, deliver, dead-letter, commit, report
``delivery_rounds``       delivering a due batch and applying its reports; retry rounds
``delivery_wait``         the wait a delivery is given: it polls Kafka, partitions paused
``round_reports``         what a delivery round's reports say: 429s, ``Retry-After``, attempts
``outcomes``              each record's final outcome, reported after the commit
``commits``               committing what is done, within the time the broker is given
``shutdown_clock``        the shutdown deadline and the time bounds of Kafka calls
``poison_stop_advice``    the error a stop under ``on_poison = "stop"`` raises: skip or not
``lag``                   each partition's lag; the log ends ``until_caught_up`` waits for
``metrics``               counters, lag, Prometheus text and its HTTP endpoint
``progress``              the periodic log line and the live terminal line
``build``                 wiring a ``Forwarder`` from a ``Config``
``command``               ``mixpanel-core forward``
========================  ===============================================================
"""

from mixpanel_core.forwarder.build import build_forwarder
from mixpanel_core.forwarder.config import ForwarderConfig, ForwarderError
from mixpanel_core.forwarder.loop import Forwarder

__all__ = ["Forwarder", "ForwarderConfig", "ForwarderError", "build_forwarder"]
