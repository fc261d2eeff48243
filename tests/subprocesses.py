"""Running a test's own Python program in a fresh interpreter, as a user's process would."""

from __future__ import annotations

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
