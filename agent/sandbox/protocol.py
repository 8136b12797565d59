"""uvicorn's httptools protocol (C parser) with the connection-level faults `down` and `blackhole`.

These faults must happen below HTTP: `down` resets the connection the moment a request arrives
(the client sees a connection error at once, never a timeout) and `blackhole` keeps the
connection open and never answers (the client runs into its own timeouts). The decision is made
on the request line, so `/_sandbox/...` admin calls on the same port keep working in every mode.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agent.sandbox.asgi import ARRIVED
from agent.sandbox.faults import Faults

_LINGER_RESET = struct.pack("ii", 1, 0)


def protocol_class(faults: Faults) -> type[HttpToolsProtocol]:
    """A protocol class bound to one sandbox's fault switch (uvicorn wants a class)."""

    class FaultingProtocol(HttpToolsProtocol):
        _blackholed = False
        # True while the connection is idle between requests (h11's IDLE): bytes arriving then
        # begin a new request, whose request line decides the fault. False from the start of a
        # request until its response is complete.
        _between_requests = True

        def data_received(self, data: bytes) -> None:
            if self._blackholed:
                return
            if self._between_requests:
                fault = faults.connection_fault(_request_path(data))
                if fault == "down":
                    self._reset()
                    return
                if fault == "blackhole":
                    self._unset_keepalive_if_required()
                    self._blackholed = True
                    faults.held += 1
                    return
            super().data_received(data)

        def on_message_begin(self) -> None:
            self._between_requests = False
            super().on_message_begin()
            # When the request's first bytes were parsed: the `slow` delay counts from here.
            scope: dict[str, Any] = self.scope  # type: ignore[assignment]  # our own key
            scope[ARRIVED] = time.monotonic()

        def on_response_complete(self) -> None:
            self._between_requests = True
            super().on_response_complete()

        def _reset(self) -> None:
            """Close with SO_LINGER 0 so the kernel sends RST: a crisp connection error."""
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            self.transport.abort()

    return FaultingProtocol


def _request_path(data: bytes) -> str:
    """The request target of `METHOD /path HTTP/1.1`, or "" when the line is not complete yet."""
    parts = data.split(b"\r\n", 1)[0].split(b" ")
    return parts[1].decode("latin-1") if len(parts) == 3 else ""
