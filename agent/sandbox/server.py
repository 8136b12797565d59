"""Run a sandbox: state on disk, one loopback socket, uvicorn with the faulting protocol.

`SandboxServer` is used by the CLI (foreground, `serve()`) and by tests, the demo and the
benchmark (background thread, `start()`/`stop()` or `with`). Admin endpoints share the provider
port: the connection-level faults look at the request path first, so no second port is needed.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from agent.sandbox.app import SandboxState, build_app
from agent.sandbox.clock import SandboxClock
from agent.sandbox.credentials import Credentials
from agent.sandbox.faults import Faults
from agent.sandbox.precise_timer import PreciseTimer
from agent.sandbox.protocol import protocol_class
from agent.sandbox.signer import Signer
from agent.sandbox.store import SandboxStore
from agent.secrets import ApiKey

DATABASE_NAME = "sandbox.sqlite3"
KEY_NAME = "provider-key.pem"
_STARTUP_TIMEOUT_S = 10.0


class SandboxServer:
    def __init__(
        self,
        state_dir: Path,
        *,
        api_key: ApiKey,
        issuer_vat: str,
        host: str = "127.0.0.1",
        port: int = 0,
        portal_url: str | None = None,
        seed: int | None = None,
        page_size: int = 50,
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
        # TCP; with proto 0 every answer's body waits ~40 ms for the client's delayed ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://{host}:{self.port}"
        clock = SandboxClock()
        faults = Faults(seed)
        self.state = SandboxState(
            clock=clock,
            faults=faults,
            store=SandboxStore(state_dir / DATABASE_NAME),
            signer=Signer.load_or_create(state_dir / KEY_NAME),
            credentials=Credentials(api_key, issuer_vat, clock),
            portal_url=(portal_url or self.base_url).rstrip("/"),
            timer=PreciseTimer(),
            page_size=page_size,
        )
        config = uvicorn.Config(
            build_app(self.state),
            http=protocol_class(faults),
            ws="none",
            lifespan="off",
            proxy_headers=False,
            log_config=None,
            access_log=False,
            date_header=False,
            server_header=False,
            timeout_graceful_shutdown=1,
            backlog=2048,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SandboxServer({self.base_url})"

    def serve(self) -> None:
        """Serve in the foreground until SIGINT/SIGTERM (uvicorn handles the signals)."""
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        finally:
            self._close()

    def start(self) -> SandboxServer:
        """Serve from a background thread; returns once the socket accepts connections."""
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._socket])),
            name=f"sandbox:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox on {self.base_url} did not start")
            time.sleep(0.005)  # startup poll, not a timing assertion
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join()
            self._thread = None
        self._close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _close(self) -> None:
        self.state.timer.stop()
        self.state.store.close()
        self._socket.close()
