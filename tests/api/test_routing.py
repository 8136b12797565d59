"""The local API's HTTP layer (agent.api.routing) driven as the ASGI app uvicorn calls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from agent.api import routing
from agent.api.routing import LocalApiApp, Request, Response, Router
from agent.core.errors import StorageBusy

UNIX_CLIENT = ("unix:uid=1000:gid=1000:pid=42", 0)
TCP_CLIENT = ("127.0.0.1", 51000)
TOKEN = b"s3cret-token"


def _app() -> LocalApiApp:
    router = Router()

    async def echo(request: Request) -> Response:
        body = await request.body(64)
        return Response.json({"id": request.int_param("item_id"), "size": len(body)}, 201)

    async def listing(request: Request) -> Response:
        return Response.json({"limit": request.int_query("limit", 50)})

    async def broken(_: Request) -> Response:
        raise RuntimeError("database password is hunter2")

    router.add("POST", "/v1/items/{item_id}", echo, "Echo")
    router.add("GET", "/v1/items", listing, "List")
    router.add("GET", "/v1/broken", broken, "Fails")
    return LocalApiApp(router, TOKEN)


def _call(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    chunks: list[bytes] | None = None,
    client: tuple[str, int] = UNIX_CLIENT,
    headers: dict[str, str] | None = None,
    query: bytes = b"",
    app: LocalApiApp | None = None,
) -> tuple[int, dict[str, Any]]:
    parts = chunks if chunks is not None else [body]
    messages = [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "client": client,
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    asyncio.run((app or _app())(scope, receive, send))
    start, body_message = sent
    content_length = dict(start["headers"])[b"content-length"]
    assert int(content_length) == len(body_message["body"])
    return start["status"], json.loads(body_message["body"])


def test_route_with_path_parameter_and_body() -> None:
    status, body = _call("POST", "/v1/items/7", chunks=[b'{"a":', b"1}"])
    assert (status, body) == (201, {"id": 7, "size": 7})


def test_unknown_path_is_404_and_wrong_method_is_405() -> None:
    status, body = _call("GET", "/v1/nothing")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = _call("DELETE", "/v1/items")
    assert status == 405 and "use GET" in body["error"]["message"]


def test_non_numeric_parameters_name_the_field() -> None:
    status, body = _call("POST", "/v1/items/abc")
    assert status == 422 and body["error"]["fields"][0]["path"] == "item_id"
    status, body = _call("GET", "/v1/items", query=b"limit=-1")
    assert status == 422 and body["error"]["fields"][0]["path"] == "limit"
    assert _call("GET", "/v1/items", query=b"limit=5") == (200, {"limit": 5})


def test_body_over_the_cap_is_413_by_header_or_by_bytes() -> None:
    status, body = _call("POST", "/v1/items/1", headers={"content-length": "65"}, body=b"x" * 65)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, _ = _call("POST", "/v1/items/1", chunks=[b"x" * 40, b"x" * 40])
    assert status == 413


def test_tcp_callers_need_the_bearer_token() -> None:
    status, body = _call("GET", "/v1/items", client=TCP_CLIENT)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    wrong = {"authorization": "Bearer nope"}
    assert _call("GET", "/v1/items", client=TCP_CLIENT, headers=wrong)[0] == 401
    right = {"authorization": f"Bearer {TOKEN.decode()}"}
    assert _call("GET", "/v1/items", client=TCP_CLIENT, headers=right) == (200, {"limit": 50})


def test_internal_error_is_500_without_the_exception_text() -> None:
    status, body = _call("GET", "/v1/broken")
    assert status == 500
    assert body["error"]["code"] == "internal_error"
    assert "hunter2" not in json.dumps(body)


class _LockedStore:
    """A write endpoint whose first `refusals` attempts find the write lock held (StorageBusy:
    rolled back); each attempt begins a provider exchange first when `calls_provider`."""

    def __init__(self, refusals: int, *, calls_provider: bool) -> None:
        self.refusals = refusals
        self.calls_provider = calls_provider
        self.attempts = 0
        self.exchanges = 0

    async def write(self, request: Request) -> Response:
        self.attempts += 1
        body = await request.body(64)
        if self.calls_provider:
            self.exchanges += 1
        if self.attempts <= self.refusals:
            raise StorageBusy("busy", "database is locked")
        return Response.json({"attempts": self.attempts, "body": body.decode()}, 201)

    def app(self) -> LocalApiApp:
        router = Router()
        router.add("POST", "/v1/write", self.write, "Write")
        return LocalApiApp(router, TOKEN, exchanges=lambda: self.exchanges)


def test_a_busy_write_is_run_again_with_the_same_body() -> None:
    store = _LockedStore(2, calls_provider=False)
    status, answer = _call("POST", "/v1/write", body=b"x", app=store.app())
    assert (status, answer) == (201, {"attempts": 3, "body": "x"})


def test_a_busy_write_after_a_provider_exchange_is_left_to_the_till() -> None:
    store = _LockedStore(1, calls_provider=True)
    status, answer = _call("POST", "/v1/write", body=b"x", app=store.app())
    assert status == 503 and answer["error"]["code"] == "storage_busy", answer
    assert store.attempts == 1


def test_a_lock_held_past_the_budget_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "BUSY_RETRY_BUDGET_S", 0.25)
    store = _LockedStore(10_000, calls_provider=False)
    status, answer = _call("POST", "/v1/write", body=b"x", app=store.app())
    assert status == 503 and answer["error"]["retryable"] is True, answer
    assert 2 <= store.attempts <= 3
