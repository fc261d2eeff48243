"""`send` confirms a chunk only when every record of it was reported delivered: a
multiprocessing_queue sender that dies holding the chunk must not move the checkpoint."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from mixpanel_core.commands.errors import CommandError
from mixpanel_core.commands.send import Backfill, SendOptions
from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.testing import wait_until_sender_took

from .conftest import events, write_ndjson

pytestmark = pytest.mark.integration

RECORDS = 1_000


def test_a_sender_killed_after_the_last_record_leaves_the_checkpoint_before_it(
    tmp_path: Path,
) -> None:
    source = write_ndjson(tmp_path / "events.ndjson", events(RECORDS))
    checkpoint = tmp_path / "checkpoint.json"
    with EmulatorProcess() as emulator:
        config = config_from_mapping(
            {
                "mixpanel": {
                    "token": "t",
                    "api_host": emulator.base_url,
                    "service_account_username": "sa-user",
                    "service_account_secret": "sa-secret",
                    "project_id": "12345",
                },
                "transports": {
                    "default": {"type": "multiprocessing_queue", "inner": "direct"},
                    "direct": {"type": "buffered_http", "linger": 0.02},
                },
            }
        )
        state: dict[str, Backfill] = {}

        def kill_the_sender_holding_everything(path: Path, index: int) -> None:
            if index != RECORDS - 1:
                return
            transport = state["backfill"].delivery.pipeline.transport("default")
            emulator.client.stall()
            transport._producer.flush()  # hand the last batch over now
            wait_until_sender_took(transport.channel, RECORDS)
            os.kill(transport.supervisor.process.pid, signal.SIGKILL)
            transport.supervisor.process.join(10)
            emulator.client.release()

        options = SendOptions(files=(source,), checkpoint=checkpoint, batch_size=5_000)
        backfill = Backfill(config, options, after_record=kill_the_sender_holding_everything)
        state["backfill"] = backfill
        with pytest.raises(CommandError, match="were not delivered"):
            backfill.run()
        delivered = len(emulator.client.records("import"))
    assert delivered < RECORDS  # the sender really died holding records
    assert not checkpoint.exists() or '"complete": true' not in checkpoint.read_text()
