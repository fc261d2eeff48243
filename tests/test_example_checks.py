"""The checks the demos end with: they fail on what the docs say they fail on."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_multiprocess_demo_fails_on_a_duplicate_as_on_a_loss() -> None:
    """docs/examples.md: it "exits non-zero if any event was lost or duplicated"."""
    check = _example("multiprocess_events").received_problems

    assert check(3, ["a", "b", "c"]) == []
    assert check(3, ["a", "b"]) == ["lost: 3 events tracked, 2 distinct ones received"]
    assert check(3, ["a", "b", "c", "b"]) == ["duplicated: 1 event(s) received more than once"]
    assert len(check(3, ["a", "b", "b"])) == 2  # one lost and one repeated: both said
