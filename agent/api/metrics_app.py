"""The metrics-only listener: `GET /metrics` for a central Prometheus, and nothing else.

It faces the shop's network (or a VPN), unlike the API socket, so it offers no other path, takes
no request body and, with a web config, wants TLS and/or basic auth. Which addresses may connect
at all is the firewall's job (pos-agent-metrics.socket's `IPAddressAllow=`, docs/monitoring.md).
The answer is the same exposition as `/metrics` on the API socket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from agent.api.routing import Receive, Scope, Send
from agent.web_config import BasicAuth

log = logging.getLogger("pos_agent.metrics")
METRICS_PATH = "/metrics"
EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Headers = list[tuple[bytes, bytes]]


class MetricsOnlyApp:
    def __init__(self, scrape: Callable[[], bytes], auth: BasicAuth | None = None) -> None:
        """`scrape`: the exposition (gauges refreshed first), as the API's `/metrics` gives."""
        self._scrape = scrape
        self._auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        status, body, headers = await self._respond(scope)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
        client = scope.get("client")
        # A scrape every few seconds is not worth a log line; anything refused is (a probe, a
        # misconfigured scraper, a wrong password).
        log.log(
            logging.DEBUG if status == 200 else logging.INFO,
            "%s %s from %s -> %s (%.1f ms)",
            scope["method"],
            scope["path"],
            client[0] if client else "?",
            status,
            (time.perf_counter() - started) * 1000,
        )

    async def _respond(self, scope: Scope) -> tuple[int, bytes, Headers]:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self._auth is not None and not await self._auth.allows(headers.get("authorization")):
            return _text(
                401,
                "authentication required",
                [(b"www-authenticate", b'Basic realm="pos-agent metrics"')],
            )
        if scope["path"] != METRICS_PATH:
            return _text(404, f"not found: this listener serves only GET {METRICS_PATH}")
        if scope["method"] != "GET":
            return _text(405, f"{scope['method']} is not allowed; use GET", [(b"allow", b"GET")])
        if _has_body(headers):
            return _text(400, "a request body is not accepted here")
        try:
            body = self._scrape()
        except Exception as exc:
            log.exception("the scrape failed")
            return _text(503, f"the scrape failed: {type(exc).__name__}")
        return 200, body, [(b"content-type", EXPOSITION_TYPE.encode())]


def _has_body(headers: dict[str, str]) -> bool:
    length = headers.get("content-length", "0").strip()
    return "transfer-encoding" in headers or length not in ("", "0")


def _text(status: int, message: str, extra: Headers | None = None) -> tuple[int, bytes, Headers]:
    return status, (message + "\n").encode(), [(b"content-type", b"text/plain"), *(extra or [])]
