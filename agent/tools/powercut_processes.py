"""The power-cut run's processes: the daemon and the technician's commands forked from the
run itself (so a cut can stop them between any two writes), and reaped."""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from agent.tools.local_stack import LocalStack


def fork(body: Callable[[], int], registered: Callable[[int], None] | None = None) -> int:
    """A child running `body` (this process has no threads, so forking is safe).
    `registered(pid)` runs before the child starts `body`: a cut armed meanwhile already
    counts the child among the processes it kills, so none outlives the power."""
    gate, opened = os.pipe()
    pid = os.fork()
    if pid:
        os.close(gate)
        try:
            if registered is not None:
                registered(pid)
        finally:
            os.write(opened, b"\n")
            os.close(opened)
        return pid
    os.close(opened)
    os.read(gate, 1)
    os.close(gate)
    code = 1
    try:
        code = body()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def run_cli(argv: list[str]) -> int:
    from agent.cli import main

    return main(argv)


def fork_daemon(stack: LocalStack, notify_path: Path) -> int:
    def daemon() -> int:
        log = os.open(stack.root / "daemon.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ["NOTIFY_SOCKET"] = str(notify_path)
        os.environ.pop("CREDENTIALS_DIRECTORY", None)
        os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(stack.root / "cache"))
        return run_cli(["run", "--config", str(stack.config_path)])

    (stack.root / "cache").mkdir(exist_ok=True)
    return fork(daemon)


def alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    if done:
        _EXITED[pid] = True
        return False
    return not _EXITED.get(pid, False)


_EXITED: dict[int, bool] = {}


def reap(pid: int, timeout_s: float = 30.0) -> int:
    """Wait for a child (killed by a cut, or ending); its exit code, -signal if killed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout_s
        time.sleep(0.005)


def median(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 1)
