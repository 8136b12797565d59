"""Waits that end within a fraction of a millisecond of their deadline, for the `slow` delay.

asyncio's timers wait in `epoll_wait`, which counts whole milliseconds and rounds up, and the
loop then has to come round to the timer: a 19.4 ms `asyncio.sleep` lasted 20-21 ms, and the
sandbox's "20 ms" provider answered 20.9 ms after the request arrived (measured). That error
sits on top of whatever the client does, so no client could reach `concurrency / 20 ms`.
One thread waits for the earliest deadline with a timed wait (nanosecond clock, 50 µs timer
slack) and wakes the loop through `call_soon_threadsafe`, which epoll sees at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
import time


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # the request may have been cancelled meanwhile
        future.set_result(None)


class PreciseTimer:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: list[tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sandbox-timer", daemon=True)
        self._thread.start()

    async def sleep_until(self, deadline: float) -> None:
        """Return at `deadline` (a `time.monotonic()` value)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._changed:
            heapq.heappush(self._due, (deadline, next(self._order), loop, future))
            if self._due[0][3] is future:
                # Only a new earliest deadline changes the thread's wait; with one delay for
                # every request that is rare, which spares a thread wake-up per request.
                self._changed.notify()
        await future

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self._thread.join()

    def _run(self) -> None:
        with self._changed:
            while not self._stopping:
                now = time.monotonic()
                while self._due and self._due[0][0] <= now:
                    _, _, loop, future = heapq.heappop(self._due)
                    # RuntimeError: that loop has closed, so nobody is waiting any more.
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(_wake, future)
                self._changed.wait(self._due[0][0] - now if self._due else None)
