"""docs/transports/index.md's FileTransport, run as a third party would install it.

It kept ``context``, which the same page says keeps the pipeline (and so the transport) alive in
a reference cycle: a client dropped without ``close()`` left its file open until a garbage
collection. And a message sent after ``close`` raised ``ValueError`` (a closed file), where the
contract says ``TransportError``.
"""

from __future__ import annotations

import gc
import json
import re
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixpanel_core import Mixpanel, Pipeline, TransportError
from mixpanel_core.config import config_from_mapping
from mixpanel_core.testing import ReportCollector, install_distribution

DOCS = Path(__file__).resolve().parents[2] / "docs" / "transports" / "index.md"


def example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    (found,) = [block for block in blocks if "class FileTransport" in block]
    return str(found)


@pytest.fixture
def file_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    install_distribution(
        tmp_path / "site",
        "docs-file-transport",
        {"mixpanel_core.transports": {"docs_file": "docs_file_transport:FileTransport"}},
        {"docs_file_transport": example()},
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield "docs_file"
    sys.modules.pop("docs_file_transport", None)


def pipeline_for(path: Path, file_type: str, collector: ReportCollector | None = None) -> Pipeline:
    data = {"transports": {"archive": {"type": file_type, "path": str(path)}}}
    extra = [("reports", collector)] if collector is not None else []
    return Pipeline.from_config(config_from_mapping(data), extra_plugins=extra)


def test_the_example_writes_and_reports(file_type: str, tmp_path: Path) -> None:
    collector = ReportCollector()
    client = Mixpanel("tok", pipeline=pipeline_for(tmp_path / "out.jsonl", file_type, collector))
    client.track("user-1", "Signed up")
    assert client.close() == []
    (line,) = (tmp_path / "out.jsonl").read_text().splitlines()
    assert json.loads(line)["event"] == "Signed up"
    assert [(r.status.value, r.transport) for r in collector.reports] == [("accepted", "archive")]


def test_the_example_keeps_no_cycle_with_its_pipeline(file_type: str, tmp_path: Path) -> None:
    # Dropped without close(), the client frees its transport at once: no garbage collection
    # needed (the page's own warning about keeping ``context``).
    client = Mixpanel("tok", pipeline=pipeline_for(tmp_path / "out.jsonl", file_type))
    client.track("user-1", "E")
    transport = weakref.ref(client.pipeline.transport("archive"))
    # Held here, to close it after: a file freed open is a ResourceWarning.
    file = getattr(transport(), "_file")  # noqa: B009
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        del client
        assert transport() is None
    finally:
        if was_enabled:
            gc.enable()
        file.close()


def test_the_example_refuses_a_message_after_close_with_a_transport_error(
    file_type: str, tmp_path: Path
) -> None:
    client = Mixpanel("tok", pipeline=pipeline_for(tmp_path / "out.jsonl", file_type))
    client.track("user-1", "E")
    client.close()
    with pytest.raises(TransportError, match="'archive' is closed"):
        client.track("user-1", "E")
    assert client.flush() == []  # nothing held, and no ValueError from the closed file
    assert client.close() == []  # idempotent
