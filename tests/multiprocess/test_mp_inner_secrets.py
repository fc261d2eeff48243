"""What an inner transport raised reaches reports, logs and errors with no credential in it.

A third-party transport's exception may quote a credential it was given (an HTTP library's
error quoting the request). The sender put that text as it was into every FAILED report's
reason, its ERROR log (traceback included), the owner's ``TransportError`` and
``supervisor.failure``; docs/errors.md says no error holds a secret. Each ``Secret`` of
``[mixpanel]``, and each value of the inner transport's own table, is now named by its key
path instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from inner_raises_support import config, raising_types, track
from inner_transports import UNLUCKY
from mp_workers import observed_client

from mixpanel_core.errors import TransportError

pytestmark = pytest.mark.usefixtures(raising_types.__name__)

SECRET = "s3cr3t-VALUE-abcdef"
PASSWORD = "hunter2-pw"
QUOTED = "(api_secret=<mixpanel.api_secret>, password=<transports.archive.password>)"


def test_no_credential_the_inner_transport_quotes_reaches_the_owner(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    conf = config(
        out,
        mixpanel={"api_secret": SECRET},
        password=PASSWORD,
        quote_secrets=True,
        flush="raise",
        close="raise",
    )
    client, counter = observed_client(conf)
    transport: Any = client.pipeline.transport("default")
    track(client, [UNLUCKY, "Lucky", UNLUCKY])

    with caplog.at_level(logging.ERROR):
        with pytest.raises(TransportError) as raised:
            client.flush(timeout=30)
        client.close(timeout=30)

    # Named, not quoted; and the words around (``raised``, against the table's "raise") whole.
    assert str(raised.value).startswith(
        "transports.default: the inner transport 'archive' raised RuntimeError in flush: "
        f"flush exploded {QUOTED}; "
    )
    reason = (
        "the inner transport 'archive' raised OSError in send: [Errno 28] No space left on "
        f"device {QUOTED}"
    )
    assert [r.reason for r in counter.reports if r.status.value == "failed"] == [reason] * 2
    assert transport.supervisor.failure == (
        f"the inner transport 'archive' raised RuntimeError in close: close exploded {QUOTED}"
    )
    err = capfd.readouterr().err
    assert f"{reason} (logged once per method)" in err
    assert f"OSError: [Errno 28] No space left on device {QUOTED}" in err  # the traceback's
    for text in (str(raised.value), transport.supervisor.failure, caplog.text, err):
        assert SECRET not in text
        assert PASSWORD not in text
