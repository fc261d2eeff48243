"""A ``multiprocessing_queue`` table's ``batch_size`` and ``max_queue_messages`` must be above 0,
refused naming the key when read: a ``batch_size`` of 0 would otherwise be taken, and fail
later dividing by it (``queue_batches``). Kills a mutant accepting 0, which survived every test.
"""

from __future__ import annotations

import pytest

from mixpanel_core import ConfigError
from mixpanel_core.multiprocess.options import MultiprocessingQueueOptions
from mixpanel_core.schema import read


@pytest.mark.parametrize("key", ["batch_size", "max_queue_messages"])
def test_0_is_refused_naming_the_key(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read(MultiprocessingQueueOptions, {"inner": "http", key: 0}, "transports.mp")
    # At the key, as every other refusal of a key (review N1: it was "transports.mp: {key} must").
    assert str(caught.value) == f"transports.mp.{key}: must be greater than 0, not 0"
