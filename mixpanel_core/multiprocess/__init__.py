"""The machinery of the ``multiprocessing_queue`` transport, one small module per part.

::

    producers (any process)          the owning process            the sender process
    -----------------------          ------------------            ------------------
    FrameProducer  --chunks-->  QueueChannel (frame pipe)  -->  Intake -> run_sender -> inner
                                SenderSupervisor  <--reports--  ReportRelay
                                (starts, watches, stops the sender; replays its reports)

- ``options``     the TOML keys (``MultiprocessingQueueOptions``)
- ``frames``      many messages as one ``bytes`` value: the only thing producers queue
- ``pipe``        frames as atomic chunks on one pipe, and their reassembly
- ``ledger``      open producers and queued records, safe from a producer's sudden death
- ``channel``     the pipe, the report queue and the sender's liveness (``QueueChannel``)
- ``producer``    batching, the full-queue policy, the dead-sender fallback
- ``intake``      the sender's reading thread and its bounded backlog
- ``sender``      the sender process's body (``run_sender``)
- ``reports``     delivery reports from the sender back to the owner
- ``supervisor``  the owner's side: start, watch, flush, shut down
- ``worker``      producer-only transport and ``worker_client`` for spawned workers
"""

from mixpanel_core.multiprocess.channel import QueueChannel
from mixpanel_core.multiprocess.options import MultiprocessingQueueOptions
from mixpanel_core.multiprocess.sender import run_sender
from mixpanel_core.multiprocess.worker import ProducerTransport, worker_client

__all__ = [
    "MultiprocessingQueueOptions",
    "ProducerTransport",
    "QueueChannel",
    "run_sender",
    "worker_client",
]
