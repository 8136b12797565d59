"""The daemon's background work (sync, probe, start-up re-send) as tasks the daemon owns.

APScheduler only ticks: each tick starts the job's task unless the previous one is still
running. Left to APScheduler, a probe hanging on an unreachable provider logged "skipped:
maximum number of running instances reached" at every tick, and a job still running at SIGTERM
was cancelled by `asyncio.run` after the database had closed, which APScheduler logged as an
ERROR with a traceback. Here `stop()` cancels the running jobs and waits for them before the
client and the database close. A cancelled send is safe: the document keeps its state and is
sent again on the next start, and the provider answers 409 with the same MARK if it already
had it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("pos_agent.jobs")

Job = Callable[[], Awaitable[object]]


class BackgroundJobs:
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[None]] = {}
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

    def ticker(self, name: str, job: Job) -> Callable[[], Awaitable[None]]:
        """An APScheduler job function that starts `job` and returns at once."""

        async def tick() -> None:
            self.start(name, job)

        return tick

    async def stop(self) -> None:
        self._stopping = True
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
