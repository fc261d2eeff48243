"""``Emulator``: the ingestion API emulator, served from background threads of this process."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import orjson

from mixpanel_core import wire
from mixpanel_core.emulator.admin import AdminRoutes
from mixpanel_core.emulator.config import EmulatorConfig, EmulatorError
from mixpanel_core.emulator.faults import FaultPlan
from mixpanel_core.emulator.ingest import IngestService
from mixpanel_core.emulator.running import RunningEmulator
from mixpanel_core.emulator.server import EmulatorHTTPServer
from mixpanel_core.emulator.store import RecordStore


class Emulator(RunningEmulator):
    """A real HTTP server on loopback that behaves like Mixpanel's ingestion API.

    ``start()`` binds and serves on daemon threads; ``stop()`` closes the port and every open
    connection. Records and stats survive ``stop()`` so a test can inspect them afterwards.
    Constructor arguments: see ``EmulatorArguments`` (host, port, tokens, api_secret, ...).
    """

    def _configure(self, config: EmulatorConfig) -> None:
        super()._configure(config)
        self._store = RecordStore(keep_records=config.keep_records)
        self._faults = FaultPlan()
        self._admin_routes = AdminRoutes(self._store, self._faults)
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Emulator:
        """Bind the port and serve on background threads; returns self."""
        if self._server is not None:
            raise EmulatorError(f"the emulator is already running at {self.base_url}")
        try:
            server = EmulatorHTTPServer(
                self.config,
                IngestService(self.config, self._store),
                self._admin_routes,
                self._faults,
                self._store,
            )
        except (OSError, OverflowError) as exc:
            # OverflowError: a port outside 0-65535, which bind() refuses with it.
            raise EmulatorError(
                f"cannot listen on {self.config.host}:{self.config.port}: {exc};"
                " pick another port, or port 0 for any free one"
            ) from exc
        try:
            self._store.open_record_file(self.config.record_file)
        except OSError as exc:
            server.server_close()  # else the port stays bound while the error is alive
            raise EmulatorError(
                f"cannot open the record file {self.config.record_file}: {exc}"
            ) from exc
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"mixpanel-emulator-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: release stalled requests, close the port and open connections."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._faults.release()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._store.close_record_file()
        self._server = self._thread = None
        self._close_client()

    @property
    def port(self) -> int:
        """The bound port (the real one when configured with port 0)."""
        if self._server is None:
            raise EmulatorError("the emulator is not running: call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``, to configure a client's endpoint URLs with."""
        return f"http://{self.config.host}:{self.port}"

    def _admin(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        # In-process: the same routes as over HTTP, without the socket.
        raw = orjson.dumps(body) if body is not None else b""
        reply = self._admin_routes.dispatch(method, path, query or {}, raw)
        if reply.status != 200:
            raise EmulatorError(f"{method} {path} failed: {reply.body.decode()}")
        return wire.loads(reply.body)
