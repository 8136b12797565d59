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
        tick = jobs.ticker("probe", hangs)
        await tick()
        await asyncio.sleep(0)  # the job starts and waits
        await tick()
        await tick()
        await asyncio.sleep(0)
        await jobs.stop()
        await tick()  # after stop nothing starts
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
