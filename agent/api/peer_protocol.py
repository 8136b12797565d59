"""uvicorn's httptools protocol (the C parser: a third of h11's cost per request), plus who is
calling: on the Unix socket the client address becomes `unix:uid=…:gid=…:pid=…` from SO_PEERCRED,
so every request log line names the calling process."""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agent.api.listeners import peer_credentials

UNIX_PREFIX = "unix:"


class PeerCredentialsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            try:
                pid, uid, gid = peer_credentials(sock)
            except OSError:
                return
            self.client = (f"{UNIX_PREFIX}uid={uid}:gid={gid}:pid={pid}", 0)
