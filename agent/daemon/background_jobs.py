"""The daemon's background work (sync, probe, watchdog ping, start-up re-send) as tasks the
daemon owns, ticked on the event loop's monotonic clock.

Each tick starts the job's task unless the previous one is still running. The ticks wait with
`asyncio.sleep`, which counts on the monotonic clock: an NTP step of the wall clock neither
stops nor bunches them. A scheduler that computes its next run times from the wall clock would,
after a step back of one hour, stop pinging the watchdog, probing and syncing, and receipts would
stay offline after the provider came back. `stop()` cancels the ticks and the running
jobs and waits for them before the client and the database close. A cancelled send is safe: the document keeps its state and is
sent again on the next start, and the provider answers 409 with the same MARK if it already
had it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

log = logging.getLogger("pos_agent.jobs")

Job = Callable[[], Awaitable[object]]


class BackgroundJobs:
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[None]] = {}
        self._ticks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self, name: str, job: Job) -> None:
        """Run `job` unless a run of `name` is still going (then this tick is simply skipped)."""
        if self._stopping:
            return
        current = self._running.get(name)
        if current is not None and not current.done():
            return
        self._running[name] = asyncio.get_running_loop().create_task(
            self._run(name, job), name=f"pos-agent:{name}"
        )

    def every(self, name: str, interval_s: float, job: Job, *, jitter_s: float = 0.0) -> None:
        """Start `job` every `interval_s` seconds (plus up to `jitter_s`), first after one
        interval, on the monotonic clock."""

        async def tick() -> None:
            while True:
                await asyncio.sleep(interval_s + random.uniform(0.0, jitter_s))
                self.start(name, job)

        self._ticks.append(
            asyncio.get_running_loop().create_task(tick(), name=f"pos-agent:every:{name}")
        )

    async def stop(self) -> None:
        self._stopping = True
        for tick in self._ticks:
            tick.cancel()
        await asyncio.gather(*self._ticks, return_exceptions=True)
        running = {name: task for name, task in self._running.items() if not task.done()}
        for task in running.values():
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)
        if running:
            log.info("stopped mid-run: %s", ", ".join(sorted(running)))

    async def _run(self, name: str, job: Job) -> None:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job %s failed", name)
