"""ProviderTransport against scripted HTTP servers on loopback (plain TCP and TLS): keep-alive,
the three ways an answer can end, timeouts and cancellation that never let a late answer be read
as the next one's, the pool bound, and requests written exactly once, byte for byte."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.elise.transport import ProviderAnswer, ProviderTransport, Target, Timeouts
from agent.json_codec import loads

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TIMEOUTS = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}


class ScriptedServer:
    """A loopback server whose every connection runs `handler`; counts connections and keeps
    the raw requests it read."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._ssl = ssl_context
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://localhost:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


def answer(body: bytes, status: int = 201, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), extra, body)


def send(
    transport: ProviderTransport,
    url: str,
    body: bytes = b'{"a": 1}',
    headers: dict[str, str] | None = None,
    method: str = "POST",
    **timeouts: float,
) -> Awaitable[ProviderAnswer]:
    return transport.exchange(
        method,
        Target.of(httpx.URL(url + "/Invoice/json?IssuerTin=EL1")),
        headers or {"Content-Type": "application/json", "APIKey": "k"},
        body,
        Timeouts(**{**TIMEOUTS, **timeouts}),
    )


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


def keep_alive_server() -> ScriptedServer:
    """Answers every request with its own path and body length, on the same connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await server.read_request(reader)
            writer.write(answer(b"%d" % len(request.partition(b"\r\n\r\n")[2])))

    server = ScriptedServer(handler)
    return server


def test_requests_share_one_connection_and_go_out_byte_for_byte() -> None:
    async def scenario() -> None:
        async with keep_alive_server() as server:
            transport = ProviderTransport()
            for body in (b'{"a": 1}', b'{"b": "\xce\xb1"}', b"{}"):
                response = await send(transport, server.url, body)
                assert (response.status_code, response.content) == (201, b"%d" % len(body))
            await transport.aclose()
        assert server.connections == 1
        head, _, body = server.requests[0].partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"POST /Invoice/json?IssuerTin=EL1 HTTP/1.1"
        assert b"Host: localhost:%d" % server.port in lines
        assert b"Content-Length: 8" in lines and b"APIKey: k" in lines
        assert body == b'{"a": 1}'

    run(scenario)


def test_content_length_as_httpx_writes_it_and_headers_by_lower_case_name() -> None:
    """A GET carries no body and no length; a POST always says its length, even 0. The answer's
    headers are read by lower-case name (the client reads `date` and `nextpage`)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(
                answer(b"[]", 200, b"NextPage: 2\r\nDate: Mon, 07 Dec 2026 21:00:00 GMT\r\n")
            )

    server = ScriptedServer(handler)

    async def scenario() -> None:
        async with server:
            transport = ProviderTransport()
            listed = await send(transport, server.url, b"", method="GET")
            await send(transport, server.url, b"")
            await transport.aclose()
        assert listed.headers["nextpage"] == "2" and listed.headers["date"].endswith("GMT")
        get, post = (
            request.partition(b"\r\n\r\n")[0].split(b"\r\n") for request in server.requests
        )
        assert get[0].startswith(b"GET ") and not any(b"Content-Length" in line for line in get)
        assert b"Content-Length: 0" in post

    run(scenario)


def test_a_header_that_is_not_ascii_is_refused_without_quoting_it() -> None:
    async def scenario() -> None:
        async with keep_alive_server() as server:
            transport = ProviderTransport()
            with pytest.raises(httpx.LocalProtocolError) as caught:
                await send(transport, server.url, headers={"APIKey": "κλειδί-secret"})
            assert "secret" not in str(caught.value)
            await transport.aclose()
        assert server.requests == []

    run(scenario)


def test_chunked_answer() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
        )
        await server.read_request(reader)
        writer.write(answer(b"second"))

    server = ScriptedServer(handler)

    async def scenario() -> None:
        async with server:
            transport = ProviderTransport()
            first = await send(transport, server.url)
            second = await send(transport, server.url)
            await transport.aclose()
        assert loads(first.content) == {"a": 1} and second.content == b"second"
        assert server.connections == 1

    run(scenario)


def test_connection_close_answer_and_a_body_that_ends_with_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()

    server = ScriptedServer(handler)

    async def scenario() -> None:
        async with server:
            transport = ProviderTransport()
            for _ in range(2):
                response = await send(transport, server.url)
                assert response.content == b"until the end"
            await transport.aclose()
        assert server.connections == 2  # never reused after "Connection: close"

    run(scenario)


def test_a_connection_the_server_closed_while_idle_is_not_picked() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()
        # then the server's keep-alive timeout: it closes the idle connection

    server = ScriptedServer(handler)

    async def scenario() -> None:
        async with server:
            transport = ProviderTransport()
            assert (await send(transport, server.url)).content == b"ok"
            ((idle, _),) = [entry for pool in transport._idle.values() for entry in pool]
            while not idle.closed:  # the FIN reaches the client on a later loop turn
                await asyncio.sleep(0)
            assert (await send(transport, server.url)).content == b"ok"
            await transport.aclose()
        assert server.connections == 2

    run(scenario)


def test_an_idle_connection_past_its_expiry_is_not_reused() -> None:
    """A middlebox may have dropped it silently; a fresh connection costs a handshake only."""

    async def scenario() -> None:
        async with keep_alive_server() as server:
            transport = ProviderTransport(keepalive_expiry_s=0)
            for _ in range(3):
                assert (await send(transport, server.url)).status_code == 201
            await transport.aclose()
        assert server.connections == 3

    run(scenario)


def test_a_late_answer_is_never_read_as_the_next_ones() -> None:
    """Read timeout and cancellation both close the connection they interrupted."""
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await server.read_request(reader)
            if b'"late"' in request:
                await release.wait()
                writer.write(answer(b"late answer"))
            else:
                writer.write(answer(b"own answer"))

    server = ScriptedServer(handler)

    async def scenario() -> None:
        async with server:
            transport = ProviderTransport()
            with pytest.raises(httpx.ReadTimeout):
                await send(transport, server.url, b'"late"', read=0.05)
            release.set()
            answer_ = await send(transport, server.url, b'"own"')
            assert answer_.content == b"own answer"
            release.clear()
            pending = asyncio.ensure_future(send(transport, server.url, b'"late"'))
            while len(server.requests) < 3:
                await asyncio.sleep(0)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            release.set()
            answer_ = await send(transport, server.url, b'"own"')
            assert answer_.content == b"own answer"
            await transport.aclose()
        assert server.connections == 3

    run(scenario)


def test_the_pool_bound_makes_a_caller_wait_then_time_out() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await release.wait()
        writer.write(answer(b"ok"))
        await writer.drain()

    server = ScriptedServer(handler)

    async def scenario() -> None:
        async with server:
            transport = ProviderTransport(max_connections=1)
            first = asyncio.ensure_future(send(transport, server.url))
            while not server.requests:
                await asyncio.sleep(0)
            with pytest.raises(httpx.PoolTimeout):
                await send(transport, server.url, pool=0.05)
            release.set()
            assert (await first).content == b"ok"
            await transport.aclose()
        assert server.connections == 1

    run(scenario)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "closed the connection mid-answer"),
        (b"HTTQ/1.1 nonsense\r\n\r\n", "malformed answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n" + b"x" * 70000, "larger"),
    ],
)
def test_a_broken_answer_is_a_protocol_error(raw: bytes, message: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(raw)
        await writer.drain()

    server = ScriptedServer(handler)

    async def scenario() -> None:
        async with server:
            transport = ProviderTransport(max_answer_bytes=65536)
            with pytest.raises(httpx.TransportError, match=message):
                await send(transport, server.url)
            await transport.aclose()

    run(scenario)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (lambda n: b"X-Stream-%d: %s\r\n" % (n, b"v" * 40), "more than 100 headers"),
        (lambda n: b"v" * 4096, "headers are larger than allowed"),  # one endless header
    ],
)
def test_a_provider_streaming_headers_is_cut_off_early(
    header: Callable[[int], bytes], message: str
) -> None:
    """Headers that never end fail the exchange at the cap, long before the read timeout, and
    the agent stops reading: what the server managed to send stays bounded."""
    sent = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        for n in range(100_000):
            chunk = header(n)
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)

    server = ScriptedServer(handler)

    async def scenario() -> None:
        async with server:
            transport = ProviderTransport()
            with pytest.raises(httpx.RemoteProtocolError, match=message):
                await send(transport, server.url, read=30.0)
            await transport.aclose()
            await asyncio.sleep(0.05)  # let the server notice the closed connection

    run(scenario)
    assert sent < 8 * 1024 * 1024  # the kernel buffers hold a few MB at most; never 100k chunks


def test_nothing_listening_is_a_connect_error() -> None:
    async def scenario() -> None:
        async with keep_alive_server() as server:
            url = server.url
        transport = ProviderTransport()
        with pytest.raises(httpx.ConnectError, match="ConnectionRefusedError"):
            await send(transport, url)

    run(scenario)


def test_a_header_with_a_line_break_is_refused_without_quoting_it() -> None:
    async def scenario() -> None:
        async with keep_alive_server() as server:
            transport = ProviderTransport()
            injected = {"APIKey": "secret-key\r\nX-Injected: 1"}
            with pytest.raises(httpx.LocalProtocolError) as caught:
                await send(transport, server.url, headers=injected)
            assert "secret-key" not in str(caught.value)
            await transport.aclose()
        assert server.requests == []

    run(scenario)


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_verifies_the_provider_and_keeps_the_connection(tmp_path: Path) -> None:
    cert_path, key_path = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_path, key_path)
    trusting = ssl.create_default_context(cafile=str(cert_path))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(answer(b"over tls"))

    server = ScriptedServer(handler, server_tls)

    async def scenario() -> None:
        async with server:
            transport = ProviderTransport(ssl_context=trusting)
            for _ in range(2):
                response = await send(transport, server.url)
                assert response.content == b"over tls"
            await transport.aclose()
            strict = ProviderTransport()  # the system's trust store does not know this cert
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await send(strict, server.url)
        assert server.connections == 1  # the refused handshake never reached the handler

    run(scenario)
