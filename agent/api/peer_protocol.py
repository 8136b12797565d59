"""uvicorn's httptools protocol (the C parser: a third of h11's cost per request), plus who is
calling and the local API's limits.

Who: on the Unix socket the client address becomes `unix:uid=…:gid=…:pid=…` from SO_PEERCRED,
so every request log line names the calling process.

Limits: a till must get its answer even when other local programs hold connections open and say
nothing (a buggy POS plugin, a monitoring script that never closes, a local attacker). Without
limits, ~1,100 idle connections used up the 1024 file descriptors: every new till connection
timed out and the accept errors filled the log. So:
- a connection must send a request's headers within `header_timeout_s` of opening (or of its
  previous answer), else it is closed; a request being answered is never cut;
- at most `max_connections` are open: a new connection beyond it closes the longest-idle one
  (no request in progress), so a till connecting to send a sale always gets in. The cap is
  kept under the process's file limit (`effective_max_connections`), so the kernel never refuses
  the accept itself.
"""

from __future__ import annotations

import asyncio
import resource
import socket
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agent.api.listeners import peer_credentials

UNIX_PREFIX = "unix:"
# File descriptors the daemon needs beside its clients: the database and its WAL, the printer,
# provider connections, the listeners, log streams, Python's own.
RESERVED_FDS = 64


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    header_timeout_s: float


def effective_max_connections(configured: int) -> int:
    """The configured cap, lowered to what the file limit (`LimitNOFILE=`) leaves room for."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft - RESERVED_FDS))


class PeerCredentialsProtocol(HttpToolsProtocol):
    limits = ConnectionLimits(max_connections=256, header_timeout_s=10.0)

    @classmethod
    def with_limits(cls, limits: ConnectionLimits) -> type[PeerCredentialsProtocol]:
        """uvicorn builds protocols from a class: the limits ride on a subclass."""
        return type(cls.__name__, (cls,), {"limits": limits})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.active_at = self.loop.time()
        self._header_timer: asyncio.TimerHandle | None = None
        self._await_headers()
        self._make_room()
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            try:
                pid, uid, gid = peer_credentials(sock)
            except OSError:
                return
            self.client = (f"{UNIX_PREFIX}uid={uid}:gid={gid}:pid={pid}", 0)

    def data_received(self, data: bytes) -> None:
        self.active_at = self.loop.time()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self.active_at = self.loop.time()
        super().on_response_complete()
        if not self.transport.is_closing() and self.idle:
            self._await_headers()

    @property
    def idle(self) -> bool:
        """No request is being read or answered on this connection."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _await_headers(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(
            self.limits.header_timeout_s, self._headers_too_late
        )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _make_room(self) -> None:
        """Over the cap: close the longest-idle other connection; with none idle, this one."""
        if len(self.connections) <= self.limits.max_connections:
            return
        idle = [
            other
            for other in self.connections
            if other is not self
            and isinstance(other, PeerCredentialsProtocol)
            and other.idle
            and not other.transport.is_closing()
        ]
        victim = min(idle, key=lambda other: other.active_at, default=self)
        victim.transport.close()
