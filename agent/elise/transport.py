"""The provider transport: HTTP/1.1 keep-alive on asyncio, one exchange per call.

The client hands it a request's parts (method, `Target`, headers, body, `Timeouts`) and gets a
`ProviderAnswer` back; only httpx's exception classes are shared, since the client classifies its
outcomes by them. httpx's own transport goes through httpcore and anyio, which cost about 1.4 ms
per exchange on the benchmark machine even with one connection and nothing else running (a 20
ms provider answered in 22.2 ms, against 20.8 ms with plain asyncio streams); its `Request` and
`Response` models, kept around this transport at first, still cost about a seventh of the
daemon's CPU per sale (header objects, a byte stream and a content decoder for a few hundred
bytes of JSON). The sync sends thousands of documents in a row and the till pays it on every
sale. This transport writes each request in one `write`, parses the answer with httptools
(llhttp, the parser uvicorn already uses for the local API) and keeps idle connections per
origin.

What it does and does not do, on purpose:
- HTTP/1.1 only, no proxies, no redirects, no retries, no content decoding (the client asks for
  none): a POST that may have reached the provider is never re-sent by this layer (the sync
  re-sends by UID, which the provider deduplicates).
- `Timeouts`: `connect` (TCP + TLS), `write` (the request leaving the buffer), `read` (the whole
  answer after the request was written: stricter than httpx's "between two reads", and the
  same thing for the provider's small JSON answers), `pool` (waiting for a free connection).
- A connection is reused only after a complete answer that allows keep-alive; a connection the
  server closed while idle is dropped before it is picked; an exchange that was cancelled or
  failed closes its connection, so a late answer can never be read as the next one's.
- An idle connection is reused for 5 s at most (httpx's default): NAT routers and firewalls
  drop idle connections without telling either side, and a sale sent into one would wait for
  its read timeout and go offline. The sync reuses its connections within milliseconds.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httptools
import httpx

DEFAULT_MAX_CONNECTIONS = 100  # as httpx's default: the sync and the till stay well below
DEFAULT_MAX_ANSWER_BYTES = 8 * 1024 * 1024
# The provider's answers carry a dozen short headers. A server that streams headers (or one
# endless header, which the parser buffers without calling us) must not grow the agent's memory
# until the read timeout: the status line and headers are capped in bytes and in count.
DEFAULT_MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
DEFAULT_KEEPALIVE_EXPIRY_S = 5.0  # httpx's default

Origin = tuple[str, str, int]
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BODY_EXPECTED = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds per phase of one exchange (None: no bound), as httpx's `Timeout` names them."""

    connect: float | None
    read: float | None
    write: float | None
    pool: float | None


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request goes, worked out once per URL: the connection's origin, the request
    line's path with its query, and the `Host` header."""

    origin: Origin
    path: bytes
    host: bytes

    @classmethod
    def of(cls, url: httpx.URL) -> Target:
        """httpx's URL parser (IDNA, percent-encoding, default ports) reads the address."""
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"{url.scheme!r} is not http or https")
        port = url.port or (443 if url.scheme == "https" else 80)
        return cls((url.scheme, url.host, port), url.raw_path, url.netloc)


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    """A whole answer: status, headers by lower-case name (the last of a repeated one wins;
    the client reads `Date` and `NextPage`), body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


class _Answer:
    """What the parser collected for one response."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0  # bytes received before the headers were complete
        self.body = bytearray()
        self.headers_done = False
        self.until_close = False
        self.keep_alive = False


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one exchange at a time."""

    def __init__(self, max_answer_bytes: int, max_head_bytes: int) -> None:
        self._max_answer_bytes = max_answer_bytes
        self._max_head_bytes = max_head_bytes
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._answer = _Answer()
        self._done: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._lost = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # A request goes out in one write; never hold it back for an ACK (Nagle).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self._parser is None:
            # Bytes nobody asked for: the server is confused; never read them as an answer.
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed answer: {type(exc).__name__}"))
            self.close()
            return
        if not self._answer.headers_done:
            self._answer.head_bytes += len(data)
            if self._answer.head_bytes > self._max_head_bytes:
                self._refuse("the answer's headers are larger than allowed")

    def eof_received(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        """Lost, or closing (asyncio reports the loss a loop turn later, and meanwhile drops
        whatever is written: the request would wait for its read timeout)."""
        return self._lost or self._transport is None or self._transport.is_closing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._done is not None and not self._done.done():
            if self._answer.headers_done and self._answer.until_close:
                self._done.set_result(None)  # a body delimited by the end of the connection
            else:
                self._fail(httpx.ReadError("the provider closed the connection mid-answer"))
        if self._writable is not None and not self._writable.done():
            self._writable.set_exception(httpx.WriteError("the connection closed while sending"))

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- httptools callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._answer.headers.append((name, value))
        if len(self._answer.headers) > MAX_HEADERS:
            self._refuse(f"the answer has more than {MAX_HEADERS} headers")

    def on_headers_complete(self) -> None:
        answer = self._answer
        answer.headers_done = True
        names = {name.lower() for name, _ in answer.headers}
        answer.until_close = b"content-length" not in names and b"transfer-encoding" not in names

    def on_body(self, body: bytes) -> None:
        self._answer.body += body
        if len(self._answer.body) > self._max_answer_bytes:
            self._refuse("the answer is larger than allowed")

    def on_message_complete(self) -> None:
        assert self._parser is not None
        self._answer.keep_alive = self._parser.should_keep_alive()  # not known after this call
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    # -- the exchange -----------------------------------------------------------------------

    async def exchange(
        self, request: bytes, timeouts: Timeouts
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        """Send one request, wait for its whole answer; (status, headers, body, reusable)."""
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        self._answer = _Answer()
        self._parser = httptools.HttpResponseParser(self)
        self._done = loop.create_future()
        self._transport.write(request)
        if self._writable is not None:
            await _within(timeouts.write, httpx.WriteTimeout, self._writable)
        # The read bound is a timer that fails the answer's future: `asyncio.timeout` would
        # cancel and uncancel the task, a tenth of this layer's CPU on every exchange.
        expiry = (
            None
            if timeouts.read is None
            else loop.call_later(timeouts.read, self._read_expired, timeouts.read)
        )
        try:
            await self._done
        finally:
            if expiry is not None:
                expiry.cancel()
        parser, self._parser = self._parser, None
        status = parser.get_status_code()
        reusable = self._answer.keep_alive and not self.closed and status >= 200
        return status, self._answer.headers, bytes(self._answer.body), reusable

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _refuse(self, reason: str) -> None:
        """Stop reading a misbehaving answer: the exchange fails and the connection closes."""
        self._fail(httpx.RemoteProtocolError(reason))
        self.close()

    def _read_expired(self, seconds: float) -> None:
        self._fail(httpx.ReadTimeout(f"no progress within {seconds} s"))

    def _fail(self, error: Exception) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(error)


async def _within(
    seconds: float | None, timeout_error: Callable[[str], Exception], awaitable: Any
) -> Any:
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        raise timeout_error(f"no progress within {seconds} s") from None


class ProviderTransport:
    """Keep-alive connection pool per origin; at most `max_connections` exchanges at once."""

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        ssl_context: ssl.SSLContext | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
        keepalive_expiry_s: float = DEFAULT_KEEPALIVE_EXPIRY_S,
    ) -> None:
        self._max_connections = max_connections
        self._ssl_context = ssl_context
        self._max_answer_bytes = max_answer_bytes
        self._max_head_bytes = max_head_bytes
        self._keepalive_expiry_s = keepalive_expiry_s
        self._idle: dict[Origin, list[tuple[_Connection, float]]] = {}  # (connection, idle since)
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    async def exchange(
        self,
        method: str,
        target: Target,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
    ) -> ProviderAnswer:
        """One request and its whole answer; httpx's exception classes for what went wrong."""
        if self._closed:
            raise httpx.ConnectError("the transport is closed")
        raw = _serialize(method, target, headers, body)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        if self._slots.locked():
            await _within(timeouts.pool, httpx.PoolTimeout, self._slots.acquire())
        else:
            await self._slots.acquire()  # a free slot is taken at once: no timer to arm
        try:
            connection = await self._connection(target.origin, timeouts.connect)
            try:
                status, answer_headers, content, reusable = await connection.exchange(raw, timeouts)
            except BaseException:
                connection.close()
                raise
            if reusable:
                self._idle.setdefault(target.origin, []).append((connection, time.monotonic()))
            else:
                connection.close()
        finally:
            self._slots.release()
        return ProviderAnswer(
            status,
            {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in answer_headers
            },
            content,
        )

    async def aclose(self) -> None:
        self._closed = True
        for connections in self._idle.values():
            for connection, _ in connections:
                connection.close()
        self._idle.clear()

    async def _connection(self, origin: Origin, connect_s: float | None) -> _Connection:
        idle = self._idle.get(origin, [])
        expired = time.monotonic() - self._keepalive_expiry_s
        while idle:
            connection, since = idle.pop()  # the most recently used first
            if since > expired and not connection.closed:
                return connection
            connection.close()
        return await self._connect(origin, connect_s)

    async def _connect(self, origin: Origin, seconds: float | None) -> _Connection:
        scheme, host, port = origin
        tls = self._tls() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(seconds):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self._max_answer_bytes, self._max_head_bytes),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection within {seconds} s") from None
        except OSError as exc:  # ssl.SSLError included
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from None
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context(trust_env=False)
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        return self._ssl_context


def _serialize(method: str, target: Target, headers: Mapping[str, str], body: bytes) -> bytes:
    """Request line, `Host`, `Content-Length` (as httpx writes them) and the headers, and the
    body, at once.

    A header with a line break would smuggle a second header or request; it is refused
    without quoting it, since the value may be the API key or a token.
    """
    lines = [b"%s %s HTTP/1.1" % (method.encode("ascii"), target.path), b"Host: " + target.host]
    if body or method in _BODY_EXPECTED:
        lines.append(b"Content-Length: %d" % len(body))
    for name, value in headers.items():
        if _UNSAFE_IN_HEADER.search(name) or _UNSAFE_IN_HEADER.search(value):
            raise httpx.LocalProtocolError(f"header {name!r} has a control byte")
        try:
            lines.append(b"%s: %s" % (name.encode("ascii"), value.encode("ascii")))
        except UnicodeEncodeError:
            raise httpx.LocalProtocolError(f"header {name!r} is not ASCII") from None
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
