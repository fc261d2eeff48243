"""Run every benchmark in this folder, one after another, each in its own process.

    .venv/bin/python benchmarks/run_all.py

Each benchmark measures mixpanel-core against the official ``mixpanel`` package (or the bare
kafka-python client) in the same run and prints the ratio; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("bench_track.py", "bench_http.py", "bench_multiprocess.py", "bench_kafka.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()  # no options yet; --help documents the command
    failed = []
    for name in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        if subprocess.run([sys.executable, str(HERE / name)], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
