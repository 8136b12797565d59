"""The harnesses' local stack (`agent/tools/local_stack.py`): a daemon start that times out
leaves no daemon behind, so a start tried again (the chaos run's restarts) is the only one."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.tools.local_stack import LocalStack, StackSettings


def test_a_start_that_is_not_ready_in_time_leaves_no_daemon(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path, StackSettings(printer_backend="dummy"))
    try:
        stack.start_sandbox()
        with pytest.raises(RuntimeError, match="daemon not ready after 0 s"):
            stack.start_daemon(timeout_s=0)  # no time at all: never READY
        assert stack.daemon is not None and stack.daemon.poll() is not None
        stack.start_daemon()  # started again: the one daemon, ready
        assert stack.daemon.poll() is None
    finally:
        stack.stop()
