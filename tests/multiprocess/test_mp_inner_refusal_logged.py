"""An inner transport that refuses with mixpanel-core's own ``TransportError`` (what the
transport contract tells it to raise when it cannot take a message) is heard of without a
``mixpanel_delivered`` observer.

The sender reported such a message FAILED and said nothing else: with no observer in the owner
(the reports went nowhere), ``track()`` and ``close()`` returned, nothing was written, and not
one line was logged at any level. An ``OSError`` from the same ``send`` was logged. The refusal
is now logged once per method, at WARNING, with its text redacted like any other's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from inner_raises_support import client_for, config, raising_types, track, written
from inner_transports import UNLUCKY

pytestmark = pytest.mark.usefixtures(raising_types.__name__)

SECRET = "s3cr3t-VALUE-abcdef"
PASSWORD = "hunter2-pw"
QUOTED = "(api_secret=<mixpanel.api_secret>, password=<transports.archive.password>)"


@pytest.mark.parametrize("forward", [False, True], ids=["no observer", "observed"])
def test_a_refusal_by_the_inner_transport_is_logged_once_and_redacted(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], forward: bool
) -> None:
    out = tmp_path / "out.jsonl"
    conf = config(
        out,
        mixpanel={"api_secret": SECRET},
        password=PASSWORD,
        quote_secrets=True,
        raises="transport",
    )
    client, counter, transport = client_for(conf, forward)
    track(client, [UNLUCKY, "Lucky", UNLUCKY])
    assert client.close(timeout=30) == []

    assert written(out) == ["id-1"]
    supervisor: Any = transport.supervisor
    assert supervisor.counts == {"accepted": 1, "failed": 2}
    err = capfd.readouterr().err
    line = (
        "the inner transport 'archive' refused 1 record(s) in send: TransportError: the "
        f"archive refused it {QUOTED}; each is reported FAILED (logged once per method"
    )
    assert err.count(line) == 1, err
    assert err.count("refused 1 record(s)") == 1  # the second refusal is not logged again
    assert SECRET not in err
    assert PASSWORD not in err
    if forward:
        reasons = [r.reason for r in counter.reports if r.status.value == "failed"]
        assert reasons == [f"the archive refused it {QUOTED}"] * 2
