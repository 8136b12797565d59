"""The sandbox's precise timer: never early, in deadline order, survives cancelled waits and
a new event loop."""

from __future__ import annotations

import asyncio
import time

from agent.sandbox.precise_timer import PreciseTimer


def test_waits_end_in_deadline_order_and_never_before_their_deadline() -> None:
    timer = PreciseTimer()
    woke: list[tuple[int, float, float]] = []

    async def wait(tag: int, deadline: float) -> None:
        await timer.sleep_until(deadline)
        woke.append((tag, deadline, time.monotonic()))

    async def scenario() -> None:
        start = time.monotonic()
        offsets = (0.05, 0.01, 0.03, -1.0, 0.02)  # one deadline already past
        await asyncio.gather(*(wait(n, start + s) for n, s in enumerate(offsets)))

    try:
        asyncio.run(scenario())
    finally:
        timer.stop()
    assert [tag for tag, _, _ in woke] == [3, 1, 4, 2, 0]
    assert all(at >= deadline for _, deadline, at in woke)


def test_a_cancelled_wait_does_not_disturb_the_others() -> None:
    timer = PreciseTimer()

    async def scenario() -> None:
        start = time.monotonic()
        doomed = asyncio.ensure_future(timer.sleep_until(start + 0.02))
        await asyncio.sleep(0)
        doomed.cancel()
        await timer.sleep_until(start + 0.04)
        assert doomed.cancelled()

    try:
        asyncio.run(scenario())
        asyncio.run(scenario())  # a second loop gets a timerfd of its own
    finally:
        timer.stop()
