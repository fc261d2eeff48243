"""The Mixpanel ingestion client, written once: request building and auth, response
classification, the retry policy and batching. Both HTTP transports and the forwarder use it.

::

    client = IngestionClient(settings, HttpOptions(retry_budget=30))
    result = client.send_batch("track", messages)
    result.accepted, result.rejected, result.failed

See docs/ingestion.md.
"""

from mixpanel_core.ingestion.auth import ImportCredentials
from mixpanel_core.ingestion.batching import batches, records_limit, split_encoded
from mixpanel_core.ingestion.call import Deadline, Settled, Wait, WaitWhileOut
from mixpanel_core.ingestion.classify import Classification, RecordFailure, Verdict
from mixpanel_core.ingestion.client import IngestionClient
from mixpanel_core.ingestion.encoding import Encoded, EncodedPair, WireFormat, wire_format
from mixpanel_core.ingestion.endpoints import endpoint_urls
from mixpanel_core.ingestion.options import (
    MAX_GROUP_RECORDS_PER_REQUEST,
    MAX_RECORDS_PER_REQUEST,
    HttpOptions,
)
from mixpanel_core.ingestion.result import BatchResult, Outcome
from mixpanel_core.ingestion.retry import RetryPolicy

__all__ = [
    "MAX_GROUP_RECORDS_PER_REQUEST",
    "MAX_RECORDS_PER_REQUEST",
    "BatchResult",
    "Classification",
    "Deadline",
    "Encoded",
    "EncodedPair",
    "HttpOptions",
    "ImportCredentials",
    "IngestionClient",
    "Outcome",
    "RecordFailure",
    "RetryPolicy",
    "Settled",
    "Verdict",
    "Wait",
    "WaitWhileOut",
    "WireFormat",
    "batches",
    "endpoint_urls",
    "records_limit",
    "split_encoded",
    "wire_format",
]
