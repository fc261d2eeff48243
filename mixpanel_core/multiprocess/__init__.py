"""The machinery of the ``multiprocessing_queue`` transport, one small module per part.

::

    producers (any process)          the owning process               the sender process
    -----------------------          ------------------               ------------------
    FrameProducer  --frames-->  QueueChannel (bounded queue)  -->  run_sender -> inner transport
                                SenderSupervisor  <--reports--     ReportRelay
                                (starts, watches, stops the sender; replays its reports)

- ``options``     the TOML keys (``MultiprocessingQueueOptions``)
- ``frames``      many messages as one ``bytes`` value: the only thing producers queue
- ``channel``     the shared queues and the sender's liveness (``QueueChannel``)
- ``producer``    batching, the full-queue policy, the dead-sender fallback
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
