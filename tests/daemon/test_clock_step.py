"""A wall-clock step (an NTP correction, a technician setting the date) must not stop the daemon's
background work. Reproduced with libfaketime (Debian's `faketime` package): the daemon's wall
clock is moved back one hour while its monotonic clock runs on, as after a real step. Under
APScheduler (before) the probe, the sync and the watchdog pings stopped for that hour and
receipts stayed offline after the provider came back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.tools.local_stack import LocalStack, StackSettings, cash_receipt, post_json
from tests.e2e.stack import wait_for

pytestmark = pytest.mark.e2e

# Debian puts it under the architecture's multiarch directory (x86_64-linux-gnu, aarch64-…).
LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))), None)


@pytest.fixture
def stepped_stack(tmp_path: Path) -> Iterator[tuple[LocalStack, Path]]:
    if LIBFAKETIME is None:
        pytest.skip(
            "libfaketime is not installed: apt-get install faketime (make test does, as root)"
        )
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    settings = StackSettings(
        printer_backend="dummy",
        probe_interval_s=0.5,
        sync_interval_s=1.0,
        connect_timeout_s=2.0,
        read_timeout_s=4.0,
        total_timeout_s=5.0,
    )
    (tmp_path / "stack").mkdir()
    stack = LocalStack(tmp_path / "stack", settings)
    try:
        stack.start_sandbox()
        stack.write_config()
        stack.start_daemon(
            extra_env={
                "LD_PRELOAD": str(LIBFAKETIME),
                "FAKETIME_TIMESTAMP_FILE": str(offset),
                # Re-read the file every second. FAKETIME_NO_CACHE (every call) together with
                # DONT_FAKE_MONOTONIC made each request take seconds under libfaketime 0.9.10.
                "FAKETIME_CACHE_DURATION": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            }
        )
        yield stack, offset
    finally:
        stack.stop()


def step_back(offset: Path, spec: str) -> None:
    """Replace the offset file in one rename: libfaketime must never read it half written."""
    fresh = offset.with_suffix(".new")
    fresh.write_text(spec + "\n")
    fresh.replace(offset)


def test_a_step_back_of_the_wall_clock_does_not_stop_probe_and_sync(
    stepped_stack: tuple[LocalStack, Path],
) -> None:
    stack, offset = stepped_stack
    stack.set_faults("down")
    with stack.client() as client:
        answer = post_json(client, "/v1/receipts", cash_receipt("clock-step-1")).json()
    assert answer["state"] == "delayed", answer

    step_back(offset, "-1h")  # the daemon's wall clock jumps back one hour

    def step_seen() -> dict[str, Any] | None:
        with stack.client() as client:
            clock: dict[str, Any] = client.get("/v1/status").json()["clock"]
        return clock if clock["step_s"] is not None else None

    clock = wait_for(step_seen, timeout_s=15, what="the daemon seeing its clock stepped")
    assert -3610 < clock["step_s"] < -3590, clock
    with stack.client() as client:
        status = client.get("/v1/status").json()
    assert status["exit_code"] >= 1
    assert any("wall clock was stepped by -3" in text for text in status["findings"]), status
    stack.set_faults("ok")

    def synced() -> bool:
        with stack.client() as client:
            return client.get(f"/v1/receipts/{answer['receipt_id']}").json()["state"] == "accepted"

    # Only the background probe and sync can deliver it: nobody asks for a sync here.
    wait_for(synced, timeout_s=30, what="the offline receipt synced by the background probe")
