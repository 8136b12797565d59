"""The sandbox's HTTP layer: a plain ASGI application over a table of exact paths.

Why not a framework: the sandbox shares the benchmark machine's CPUs with the agent it measures,
and per request Starlette ran its error and exception middleware, a router and a path-folding
wrapper, and built URL, Headers, Request and Response objects. The endpoints need little: the
lower-cased path (the provider's ASP.NET routing is case-insensitive), two headers, the query
string, the whole body, and a `Date` header from the sandbox clock. Unknown paths and methods get
Starlette's plain-text 404 and 405.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from agent.sandbox.clock import SandboxClock

Scope = dict[str, Any]
ARRIVED = "sandbox.arrived"  # scope key the protocol sets: time.monotonic() of the first bytes
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # lower-cased
    headers: list[tuple[bytes, bytes]]
    query_string: bytes
    body: bytes
    arrived: float  # time.monotonic() when its first bytes were read

    def header(self, name: bytes) -> str | None:
        """The first value of a header; `name` in lower case (the server lower-cases names)."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def query(self, name: str) -> str | None:
        """A query parameter by exact name; the last one wins when repeated."""
        return dict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True)).get(
            name
        )


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()


Endpoint = Callable[[Request], Awaitable[Response]]

_NOT_FOUND = Response(404, b"Not Found", b"text/plain; charset=utf-8")


class SandboxApp:
    """Routes `{path: {method: endpoint}}`; a GET endpoint also answers HEAD, as in Starlette."""

    def __init__(
        self,
        routes: dict[str, dict[str, Endpoint]],
        clock: SandboxClock,
        prefixed: dict[str, dict[str, Endpoint]] | None = None,
    ) -> None:
        """`prefixed`: routes whose path continues with parameters (`/invoice/getdocuments/`)."""
        self._routes = routes
        self._clock = clock
        self._prefixed = prefixed or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"].lower()
        method = scope["method"]
        methods = self._routes.get(path) or next(
            (routes for prefix, routes in self._prefixed.items() if path.startswith(prefix)), None
        )
        if methods is None:
            response = _NOT_FOUND
        elif (endpoint := methods.get("GET" if method == "HEAD" else method)) is None:
            response = _method_not_allowed(methods)
        else:
            body = await _read_body(receive)
            if body is None:
                return
            arrived = scope.get(ARRIVED) or time.monotonic()  # set by the sandbox's protocol
            request = Request(method, path, scope["headers"], scope["query_string"], body, arrived)
            response = await endpoint(request)
        date = format_datetime(self._clock.now(), usegmt=True).encode()
        headers = [
            *response.headers,
            (b"content-length", str(len(response.body)).encode()),
            (b"content-type", response.content_type),
            (b"date", date),
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


def _method_not_allowed(methods: dict[str, Endpoint]) -> Response:
    allowed = sorted({*methods, "HEAD"} if "GET" in methods else methods)
    allow = ((b"allow", ", ".join(allowed).encode()),)
    return Response(405, b"Method Not Allowed", b"text/plain; charset=utf-8", allow)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away before sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
