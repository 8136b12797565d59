"""Waits that end within a fraction of a millisecond of their deadline, for the `slow` delay.

asyncio's timers wait in `epoll_wait`, which counts whole milliseconds and rounds up, and the
loop then has to come round to the timer: a 19.4 ms `asyncio.sleep` lasted 20-21 ms, and the
sandbox's "20 ms" provider answered 20.9 ms after the request arrived (measured). That error
sits on top of whatever the client does, so no client could reach `concurrency / 20 ms`.
A Linux timerfd armed for the earliest deadline (absolute, nanoseconds, on the same
CLOCK_MONOTONIC as `time.monotonic()`) is watched by the event loop itself: the kernel wakes
the loop at the deadline, with no helper thread (Python 3.11 has no `os.timerfd_create`, so it
is called through ctypes).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import heapq
import itertools
import os
import time

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int) -> int:
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
    return result


class PreciseTimer:
    """A timerfd watched by the loop that waits on it (the sandbox has one loop)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._armed_for: float | None = None

    async def sleep_until(self, deadline: float) -> None:
        """Return at `deadline` (a `time.monotonic()` value)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._watch(loop)
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._due, (deadline, next(self._order), future))
        if self._armed_for is None or deadline < self._armed_for:
            self._arm(deadline)
        await future

    def stop(self) -> None:
        if self._fd is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            os.close(self._fd)
        self._fd = self._loop = self._armed_for = None
        self._due.clear()

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """A new timerfd watched by `loop` (waits left on an earlier loop died with it)."""
        self.stop()
        self._fd = _check(_libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC))
        self._loop = loop
        loop.add_reader(self._fd, self._fire)

    def _fire(self) -> None:
        assert self._fd is not None
        with contextlib.suppress(BlockingIOError):  # nothing to read: woken by another fd
            os.read(self._fd, 8)
        self._armed_for = None
        now = time.monotonic()
        while self._due and self._due[0][0] <= now:
            _, _, future = heapq.heappop(self._due)
            if not future.done():  # the request may have been cancelled meanwhile
                future.set_result(None)
        if self._due:
            self._arm(self._due[0][0])

    def _arm(self, deadline: float) -> None:
        assert self._fd is not None
        seconds = int(deadline)
        spec = _Itimerspec(
            _Timespec(0, 0), _Timespec(seconds, max(1, int((deadline - seconds) * 1e9)))
        )
        _check(_libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None))
        self._armed_for = deadline
