"""BackgroundJobs: one run per job at a time, failures logged, stop() cancels and waits."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.daemon.background_jobs import BackgroundJobs


def test_a_tick_while_the_job_runs_is_skipped_and_stop_cancels_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pos_agent.jobs")
    runs: list[str] = []
    cancelled: list[str] = []

    async def hangs() -> None:
        runs.append("probe")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("probe")
            raise

    async def scenario() -> None:
        jobs = BackgroundJobs()
        jobs.start("probe", hangs)
        await asyncio.sleep(0)  # the job starts and waits
        jobs.start("probe", hangs)
        jobs.start("probe", hangs)
        await asyncio.sleep(0)
        await jobs.stop()
        jobs.start("probe", hangs)  # after stop nothing starts
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert runs == ["probe"] and cancelled == ["probe"]
    assert "stopped mid-run: probe" in caplog.text


def test_a_failed_run_is_logged_and_the_next_tick_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[int] = []

    async def fails() -> None:
        attempts.append(len(attempts))
        raise RuntimeError("database is locked")

    async def scenario() -> None:
        jobs = BackgroundJobs()
        for _ in range(2):
            jobs.start("sync", fails)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        await jobs.stop()

    asyncio.run(scenario())
    assert attempts == [0, 1]
    failures = [r for r in caplog.records if r.name == "pos_agent.jobs" and r.levelname == "ERROR"]
    assert len(failures) == 2 and "background job sync failed" in failures[0].getMessage()
    assert failures[0].exc_info is not None


def test_every_ticks_until_stopped() -> None:
    """Ticks go on while a run is slow (a tick during a run is skipped) and end with stop()."""
    runs: list[int] = []
    enough = asyncio.Event()

    async def job() -> None:
        runs.append(len(runs))
        if len(runs) == 3:
            enough.set()

    async def scenario() -> None:
        jobs = BackgroundJobs()
        jobs.every("sync", 0.001, job, jitter_s=0.001)
        await asyncio.wait_for(enough.wait(), timeout=10)
        await jobs.stop()
        after_stop = len(runs)
        await asyncio.sleep(0.01)
        assert len(runs) == after_stop

    asyncio.run(scenario())
    assert runs[:3] == [0, 1, 2]
