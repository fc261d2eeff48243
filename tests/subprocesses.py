"""Running a test's own Python program in a fresh interpreter, as a user's process would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap


def run_python(program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``program`` (dedented) with ``args`` and this interpreter's import path; the output
    is captured as text, and the exit code left for the test to check."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def derived_insert_id_in_a_fresh_interpreter(*parts: str | int) -> str:
    """``derived_insert_id(*parts)`` as another process computes it: a redelivery, a replay or
    a restarted forwarder must derive the id this process did, or Mixpanel cannot deduplicate."""
    finished = run_python(
        """
        import json, sys
        from mixpanel_core.insert_id import derived_insert_id
        print(derived_insert_id(*json.loads(sys.argv[1])))
        """,
        json.dumps(parts),
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout.strip()
