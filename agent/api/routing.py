"""The local API's HTTP layer: a plain ASGI application with a route table.

Why not a framework: the agent parses its own bodies (Decimal-exact JSON, size cap before
parsing) and writes its own error bodies, so a framework only added per-request middleware layers
and 30 MB of imports to a process that must stay small and answer the till in milliseconds.
What is left is routing, body reading, the bearer check for loopback TCP and the access log.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel

from agent.api.errors import ApiError, FieldProblem, from_domain_error
from agent.api.peer_protocol import UNIX_PREFIX
from agent.core.errors import StorageBusy
from agent.core.request_identity import wire
from agent.fiscal.errors import DomainError
from agent.json_codec import dumps

log = logging.getLogger("pos_agent.api")
access = logging.getLogger("pos_agent.access")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# A write refused because another connection held SQLite's write lock longer than the daemon's
# busy wait (StorageBusy: the transaction was rolled back) is run again after a pause on the
# event loop, until this budget is spent, so the till sees 503 only for a lock held well past a
# commit's time. Only when no provider exchange was begun meanwhile: a call the provider may
# have acted on is left to the till's own retry with its request_id. The pause is awaited, not
# slept in SQLite's busy handler, so the loop serves other requests.
BUSY_RETRY_BUDGET_S = 1.5
BUSY_RETRY_PAUSE_S = 0.1
_PARAMETER = re.compile(r"\{([a-z_]+)\}")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, content: Any, status: int = 200) -> Response:
        """Decimals go out as exact JSON numbers."""
        return cls(status, dumps(content, allow_float=True))

    @classmethod
    def model(cls, answer: BaseModel, status: int = 200) -> Response:
        """A typed answer, serialised here and only here (`wire`: the API's field names,
        optional fields left out, amounts exact)."""
        return cls.json(wire(answer), status)


@dataclass
class Request:
    method: str
    path: str
    client: str
    headers: dict[str, str]
    query: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    _receive: Receive | None = None
    _body: bytes | None = None

    async def body(self, max_bytes: int) -> bytes:
        """The whole body, refused with 413 as soon as it passes `max_bytes`; read once and
        kept, so a handler run again (a busy storage) reads the same bytes."""
        if self._body is None:
            self._body = await self._read_body(max_bytes)
        return self._body

    async def _read_body(self, max_bytes: int) -> bytes:
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _too_large(max_bytes)
        if self._receive is None:
            return b""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ApiError(400, "client_disconnected", "the client went away mid-body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def int_param(self, name: str) -> int:
        return _integer(name, self.params[name])

    def int_query(self, name: str, default: int) -> int:
        value = self.query.get(name)
        return default if value is None else _integer(name, value)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the body is larger than {max_bytes} bytes")


def _integer(name: str, value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise ApiError(
            422,
            "invalid_request",
            f"{name} must be a whole number",
            [FieldProblem(name, "expected a whole number")],
        )
    return int(value)


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, eq=False)  # hashed by identity: the OpenAPI document is cached per table
class Route:
    """A route and what the OpenAPI document says of it: its request model, its answer model
    (`response_model`), the success statuses it answers with, its query parameters (name,
    JSON schema), the JSON schemas of path parameters that are not ids, its content type, and
    the OpenAPI links from its answer to the calls a till makes next."""

    method: str
    template: str
    handler: Handler
    pattern: re.Pattern[str]
    summary: str
    body_model: type[BaseModel] | None
    response_model: type[BaseModel] | None = None
    success: tuple[int, ...] = (200,)
    query: tuple[tuple[str, dict[str, Any]], ...] = ()
    path_schemas: tuple[tuple[str, dict[str, Any]], ...] = ()
    content_type: str = "application/json"
    links: tuple[tuple[str, dict[str, Any]], ...] = ()

    @property
    def operation_id(self) -> str:
        words = re.findall(r"[a-z0-9]+", self.template.replace("{", "by_"))
        return "_".join([self.method.lower(), *words])

    def path_parameters(self) -> list[tuple[str, dict[str, Any]]]:
        """Each `{name}` and its schema: a whole number unless the route says otherwise."""
        given = dict(self.path_schemas)
        whole: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}
        return [(name, given.get(name, whole)) for name in _PARAMETER.findall(self.template)]


class Router:
    """Exact-match paths with `{name}` segments; 404 for an unknown path, 405 for a known path
    with another method."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        summary: str,
        body_model: type[BaseModel] | None = None,
        response_model: type[BaseModel] | None = None,
        *,
        success: tuple[int, ...] | None = None,
        query: dict[str, dict[str, Any]] | None = None,
        path_schemas: dict[str, dict[str, Any]] | None = None,
        content_type: str = "application/json",
        links: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """`summary`, `body_model`, `response_model` and the rest describe the route in the
        OpenAPI document; `success` defaults to 200 for GET and 201 for POST."""
        regex = re.compile("^" + _PARAMETER.sub(r"(?P<\1>[^/]+)", template) + "$")
        self.routes.append(
            Route(
                method,
                template,
                handler,
                regex,
                summary,
                body_model,
                response_model,
                success or ((200,) if method == "GET" else (201,)),
                tuple((query or {}).items()),
                tuple((path_schemas or {}).items()),
                content_type,
                tuple((links or {}).items()),
            )
        )

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed = []
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route.handler, found.groupdict()
            allowed.append(route.method)
        if allowed:
            raise ApiError(
                405,
                "method_not_allowed",
                f"{method} is not allowed on {path}; use {', '.join(sorted(set(allowed)))}",
            )
        raise ApiError(404, "not_found", f"there is no {path} in the local API")


Guard = Callable[[str], AbstractContextManager[None]]


def _unguarded(method: str) -> AbstractContextManager[None]:
    return nullcontext()


class LocalApiApp:
    """ASGI entry point. Unix socket callers are trusted by the socket's file permissions (and
    named by SO_PEERCRED in the access log); loopback TCP callers need the bearer token."""

    def __init__(
        self,
        router: Router,
        tcp_token: bytes | None,
        guard: Guard = _unguarded,
        exchanges: Callable[[], int] = lambda: 0,
    ) -> None:
        """`guard(method)` wraps each handler call: the app turns storage faults into domain
        errors there (and notes that a write went through). `exchanges()` counts the provider
        exchanges begun, any request's (a busy write after one is not run again)."""
        self.router = router
        self._token = tcp_token
        self._guard = guard
        self._exchanges = exchanges

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request = _request(scope, receive)
        response = await self._respond(request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type.encode()),
                    (b"content-length", str(len(response.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
        access.info(
            "%s %s from %s -> %s (%.1f ms)",
            request.method,
            request.path,
            request.client,
            response.status,
            (time.perf_counter() - started) * 1000,
        )

    async def _respond(self, request: Request) -> Response:
        try:
            if not request.client.startswith(UNIX_PREFIX):
                self._check_token(request)
            handler, request.params = self.router.match(request.method, request.path)
            return await self._handle(handler, request)
        except ApiError as exc:
            return Response.json(exc.body(), exc.status)
        except DomainError as exc:
            error = from_domain_error(exc)
            return Response.json(error.body(), error.status)
        except Exception as exc:
            log.exception("internal error on %s %s", request.method, request.path)
            body = {
                "error": {
                    "code": "internal_error",
                    "message": f"the agent failed: {type(exc).__name__}",
                }
            }
            return Response.json(body, 500)

    async def _handle(self, handler: Handler, request: Request) -> Response:
        deadline = time.monotonic() + BUSY_RETRY_BUDGET_S
        while True:
            exchanges = self._exchanges()
            try:
                with self._guard(request.method):
                    return await handler(request)
            except StorageBusy:
                if self._exchanges() != exchanges:
                    raise
                if time.monotonic() + BUSY_RETRY_PAUSE_S >= deadline:
                    raise
            await asyncio.sleep(BUSY_RETRY_PAUSE_S)

    def _check_token(self, request: Request) -> None:
        supplied = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        if self._token is None or not hmac.compare_digest(supplied, self._token):
            raise ApiError(401, "unauthorized", "a bearer token is required on the TCP port")


def _request(scope: Scope, receive: Receive) -> Request:
    client = scope.get("client")
    query = scope.get("query_string", b"").decode("latin-1")
    return Request(
        method=scope["method"],
        path=scope["path"],
        client=str(client[0]) if client else "?",
        headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        query=dict(parse_qsl(query, keep_blank_values=True)),
        _receive=receive,
    )
