"""Accept errors when the file descriptors run out are logged once per interval, not per retry."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.daemon.loop_errors import RateLimitedLoopErrors


def test_an_accept_error_flood_is_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    errors = RateLimitedLoopErrors(lambda: now[0], interval_s=60.0)
    loop = asyncio.new_event_loop()
    try:
        flood = {
            "message": "socket.accept() out of system resource",
            "exception": OSError(24, "Too many open files"),
        }
        with caplog.at_level(logging.ERROR, logger="pos_agent.daemon"):
            for _ in range(10_000):
                errors.handle(loop, flood)
                now[0] += 0.001  # 10 s of retries
            now[0] = 61.0
            errors.handle(loop, flood)
        lines = [r.getMessage() for r in caplog.records if "out of system resource" in r.message]
        assert len(lines) == 2, lines
        assert "(9999 more like it in the last 60 s)" in lines[1]
    finally:
        loop.close()


def test_other_loop_errors_go_to_the_default_handler(caplog: pytest.LogCaptureFixture) -> None:
    errors = RateLimitedLoopErrors(lambda: 0.0)
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.ERROR):
            for _ in range(3):
                errors.handle(loop, {"message": "Task exception was never retrieved"})
        assert sum("never retrieved" in r.getMessage() for r in caplog.records) == 3
    finally:
        loop.close()
