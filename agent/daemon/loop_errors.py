"""The event loop's error reports, with the floods rate-limited.

When the process runs out of file descriptors, asyncio reports `socket.accept() out of system
resource` for a listening socket each time it retries the accept: with a few hundred idle
clients that was 263 MB of log in 60 s, which would fill the register's disk next. Such repeats
are logged once per `interval_s`, with how many were left out; every other report goes to the
loop's default handler as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pos_agent.daemon")

FLOODING = ("socket.accept() out of system resource",)


class RateLimitedLoopErrors:
    def __init__(self, monotonic: Callable[[], float], interval_s: float = 60.0) -> None:
        self._monotonic = monotonic
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_exception_handler(self.handle)

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        kind = next((flood for flood in FLOODING if message.startswith(flood)), None)
        if kind is None:
            loop.default_exception_handler(context)
            return
        now = self._monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval_s:
            self._left_out[kind] = self._left_out.get(kind, 0) + 1
            return
        self._last[kind] = now
        left_out = self._left_out.pop(kind, 0)
        log.error(
            "%s: %s (%d more like it in the last %.0f s); too many open connections or files: "
            "see pos-agent status",
            kind,
            context.get("exception"),
            left_out,
            self._interval_s,
        )
