"""A minimal HTTP/1.1 keep-alive client over a Unix socket: the benchmark's POS.

The benchmark measures what the agent adds to a sale. A Python httpx client spends about a
millisecond of CPU per request of its own (request and URL models, cookies, auth and redirect
hooks, the connection pool), which is more than the agent's whole latency budget and says
nothing about the agent; a POS written in C#, Java or Delphi does not pay it. So the POS side
of the benchmark writes the request bytes itself and reads `Content-Length` answers, which is
all the local API sends. (The httpx figure is still reported, for POS software in Python.)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from agent.json_codec import loads


@dataclass(frozen=True)
class LeanResponse:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return loads(self.content)


class LeanUnixClient:
    """One connection, one request at a time (like one till)."""

    def __init__(self, socket_path: str) -> None:
        self._path = socket_path
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> LeanUnixClient:
        self._reader, self._writer = await asyncio.open_unix_connection(self._path)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    async def post(self, path: str, body: bytes) -> LeanResponse:
        assert self._reader is not None and self._writer is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: pos-agent\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode("ascii") + body)
        status_line = await self._reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while (line := await self._reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return LeanResponse(status, await self._reader.readexactly(length))
