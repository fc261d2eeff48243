"""A real uWSGI (pyuwsgi) pre-forking 4 workers from a master that loaded the app.

In uWSGI's default mode the workers are forked in C and Python's ``os.register_at_fork`` hooks
do not run: every worker made the master's ``$insert_id`` sequence (Mixpanel keeps one event
per id: most were lost) and a ``buffered_http`` worker never started its sender (nothing it
tracked was delivered). The resets now also run from uWSGI's own post-fork hook.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixpanel_core.emulator import EmulatorProcess

# pyuwsgi is in the dev extra: a missing one fails these tests, never skips them.
pytestmark = pytest.mark.integration

WORKERS = 4
REQUESTS = 120
BOUND = 90.0
"""Seconds any one step (start, a request, the shutdown) may take on a loaded machine."""

APP = """
import os
import time

import uwsgi

app_hooks = []
{hooks}
app_spooler = uwsgi.spooler

from mixpanel_core import Mixpanel
from mixpanel_core.process_fork import in_fork_children


class Resets:
    count = 0


resets = Resets()
in_fork_children(resets, lambda owner: setattr(owner, "count", owner.count + 1))

client = Mixpanel.from_config(os.environ["MP_CONFIG"])
client.pipeline.build_all()
client.track("master", "app loaded")
# Delivered before the workers are forked: unless uWSGI is told py-call-uwsgi-fork-hooks, a
# worker forked while a thread of the master's held the interpreter (buffered_http sending)
# hangs for good (uWSGI's own limit, whatever the thread; docs/transports/index.md advises
# sending nothing from the master). The event gives the workers a master's state to reset;
# the pause lets the master's threads, which go on a moment after flush() returns, wait
# again before uWSGI forks: on a loaded machine a worker hung (90 s) without it.
client.flush()
time.sleep(0.5)


def application(environ, start_response):
    # Busy a little while, so that concurrent requests reach several workers.
    time.sleep(0.02)
    client.track("worker", "request", {"n": environ["QUERY_STRING"], "pid": os.getpid()})
    start_response("200 OK", [("Content-Type", "text/plain")])
    spooler_kept = uwsgi.spooler is app_spooler
    return [f"{os.getpid()} {resets.count} {len(app_hooks)} {spooler_kept}".encode()]
"""

HOOKS = {
    # The app's own hook and spooler, set before mixpanel_core is imported: both are kept.
    "set": """
uwsgi.post_fork_hook = lambda: app_hooks.append(os.getpid())
uwsgi.spooler = lambda env: uwsgi.SPOOL_OK
""",
    # uwsgidecorators' chain stops at a hook that raises: the resets must have run before.
    "raises": """
import uwsgidecorators

@uwsgidecorators.postfork
def connect_to_the_database():
    app_hooks.append(os.getpid())
    raise ConnectionError("the database is not up yet")
""",
    # A hook that tracks must find the worker's own state (its $insert_ids, its sender).
    "tracks": """
import uwsgidecorators

@uwsgidecorators.postfork
def worker_started():
    app_hooks.append(os.getpid())
    client.track("worker", "worker started", {"pid": os.getpid()})
""",
}


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess() as running:
        yield running


def _log_tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-40:])


def _bound_port(proc: subprocess.Popen[bytes], log: Path) -> int:
    """The port uWSGI was given by the kernel (``:0``, so no other process can take it)."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        found = re.search(r"bound to TCP address 127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return int(found.group(1))
        assert proc.poll() is None, f"uWSGI exited at start:\n{_log_tail(log)}"
        time.sleep(0.05)
    raise AssertionError(f"uWSGI did not bind its socket in {BOUND} s:\n{_log_tail(log)}")


def _get(port: int, n: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/?{n}", timeout=BOUND) as answer:
        assert answer.status == 200
        return str(answer.read().decode())


@pytest.mark.parametrize(
    ("transport", "extra", "decorators", "hooks", "preimported"),
    [
        pytest.param("http", (), True, "set", False, id="http"),
        pytest.param("buffered_http", (), True, "set", False, id="buffered_http"),
        # Python's fork hooks run too, so both run in each worker: the resets must run once.
        pytest.param(
            "buffered_http", ("--py-call-osafterfork",), True, "set", False, id="osafterfork"
        ),
        pytest.param(
            "buffered_http",
            ("--py-call-uwsgi-fork-hooks",),
            True,
            "set",
            False,
            id="uwsgi_fork_hooks",
        ),
        # uwsgidecorators unavailable (shadowed): uwsgi.post_fork_hook is chained by hand.
        pytest.param("http", (), False, "set", False, id="no_uwsgidecorators"),
        pytest.param("buffered_http", (), True, "raises", False, id="app_hook_raises"),
        pytest.param("http", (), True, "tracks", False, id="app_hook_tracks_http"),
        pytest.param("buffered_http", (), True, "tracks", False, id="app_hook_tracks_buffered"),
        # mixpanel_core imported before uWSGI starts in the same interpreter (pyuwsgi run
        # from an app's own command): it finds uWSGI when the app builds its client.
        pytest.param("buffered_http", (), True, "set", True, id="imported_before_uwsgi"),
    ],
)
def test_each_event_of_every_uwsgi_worker_arrives_once(
    emulator: EmulatorProcess,
    tmp_path: Path,
    transport: str,
    extra: tuple[str, ...],
    decorators: bool,
    hooks: str,
    preimported: bool,
) -> None:
    app = APP.replace("{hooks}", HOOKS[hooks])
    (tmp_path / "prefork_app.py").write_text(textwrap.dedent(app))
    config = tmp_path / "mixpanel.toml"
    config.write_text(
        f'[mixpanel]\ntoken = "emulator-token"\napi_host = "{emulator.base_url}"\n'
        f'[transports.t]\ntype = "{transport}"\n'
    )
    if not decorators:
        (tmp_path / "uwsgidecorators.py").write_text('raise ImportError("not shipped here")\n')
    log = tmp_path / "uwsgi.log"
    # And the master's "app loaded", and each worker's "worker started" if its hook tracks.
    expected = REQUESTS + 1 + (WORKERS if hooks == "tracks" else 0)
    launch = "import mixpanel_core; " if preimported else ""
    command = [
        sys.executable,
        "-c",
        f"{launch}import pyuwsgi; pyuwsgi.run()",
        "--master",
        "--processes",
        str(WORKERS),
        "--http-socket",
        "127.0.0.1:0",
        "--module",
        "prefork_app:application",
        "--chdir",
        str(tmp_path),
        "--need-app",
        "--die-on-term",
        "--disable-logging",
        *extra,
    ]
    env = {
        **os.environ,
        "MP_CONFIG": str(config),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
    }
    with log.open("wb") as out:
        # Its own session: whatever is left of uWSGI is killed as a group in ``finally``.
        proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        port = _bound_port(proc, log)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: _get(port, n), range(REQUESTS)))
        # Delivered by the workers while they run: uWSGI runs no exit hooks in a worker still
        # busy with a request when it stops, so what buffered_http holds there is not sent.
        emulator.client.wait_for_records(expected, "track", timeout=60)
        # SIGTERM under --die-on-term: the master stops the workers gracefully.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(BOUND) == 0, _log_tail(log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        print(_log_tail(log))  # shown when the test fails

    by_worker = {pid: (resets, ran) for pid, resets, ran, _ in map(str.split, answers)}
    assert len(by_worker) >= 2, f"one worker served every request: {by_worker}"
    time.sleep(0.5)  # anything sent twice would have arrived by now
    records = emulator.client.records("track")
    ids = collections.Counter(record["properties"]["$insert_id"] for record in records)
    served_by = collections.Counter(answer.split()[0] for answer in answers)
    sent_by = collections.Counter(str(r["properties"].get("pid")) for r in records)
    assert (len(records), len(ids)) == (expected, expected), (served_by, sent_by)
    served = sorted(int(r["properties"]["n"]) for r in records if r["event"] == "request")
    assert served == list(range(REQUESTS))
    # Each worker was reset once (not twice under --py-call-osafterfork), the app's hook kept.
    assert set(by_worker.values()) == {("1", "1")}, by_worker
    assert {answer.split()[3] for answer in answers} == {"True"}, "the app's spooler was replaced"
