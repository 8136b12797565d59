"""The state filesystem fills up while the till is issuing (a real tmpfs, so root only).

The promises: no 201 for a receipt the store does not hold; the till gets 503
`storage_unavailable` with `retryable: true`, never a bare 500; `status` goes CRITICAL naming
the storage and what to do; `/metrics` counts the refused writes; once space is freed the same
request_id goes through and the alarm clears."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.commands.doctor import check_storage
from agent.config import load_config
from agent.core.status_report import Level
from agent.tools.local_stack import LocalStack, StackSettings, cash_receipt, post_json

pytestmark = pytest.mark.e2e

TMPFS_BYTES = 8 * 1024 * 1024


@pytest.fixture
def small_disk_stack(tmp_path: Path) -> Iterator[LocalStack]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the state directory needs root (CI runs as root)")
    (tmp_path / "stack").mkdir()
    stack = LocalStack(
        tmp_path / "stack",
        StackSettings(
            printer_backend="dummy",
            sync_interval_s=3600.0,
            probe_interval_s=3600.0,
            connect_timeout_s=2.0,
            read_timeout_s=4.0,
            total_timeout_s=5.0,
        ),
    )
    stack.state_dir.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(stack.state_dir)],
        check=True,
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        subprocess.run(["umount", "-l", str(stack.state_dir)], check=False)


def fill(directory: Path, leave_bytes: int) -> Path:
    stat = os.statvfs(directory)
    filler = directory / "filler"
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave_bytes))
    return filler


def status(stack: LocalStack) -> dict[str, Any]:
    with stack.client() as client:
        return client.get("/v1/status").json()


def test_a_full_disk_refuses_receipts_truthfully_and_status_says_so(
    small_disk_stack: LocalStack,
) -> None:
    stack = small_disk_stack
    filler = fill(stack.state_dir, leave_bytes=512 * 1024)
    issued: list[int] = []
    refused: dict[str, Any] | None = None
    with stack.client() as client:
        for n in range(500):
            response = post_json(client, "/v1/receipts", cash_receipt(f"full-{n}"))
            if response.status_code != 201:
                refused = {
                    "request_id": f"full-{n}",
                    "status": response.status_code,
                    **response.json(),
                }
                break
            issued.append(response.json()["receipt_id"])
    assert refused is not None, "the disk never filled"
    assert issued, "the disk was full before the first receipt: the boundary was not crossed"
    assert refused["status"] == 503, refused
    assert refused["error"]["code"] == "storage_unavailable"
    assert refused["error"]["retryable"] is True and refused["error"]["storage"] == "full"

    report = status(stack)
    assert report["exit_code"] == 2
    assert report["storage"]["failing"].startswith("full:")
    assert any(f.startswith("CRITICAL: storage: writes are failing") for f in report["findings"])
    with stack.client() as client:
        metrics = client.get("/metrics").text
    assert 'pos_agent_storage_failures_total{fault="full"}' in metrics
    doctor = check_storage(load_config(stack.config_path))
    assert doctor.level is Level.CRITICAL and "MiB free" in doctor.hint, doctor

    filler.unlink()
    with stack.client() as client:
        retry = post_json(client, "/v1/receipts", cash_receipt(refused["request_id"]))
        assert retry.status_code in (200, 201), retry.text
        for receipt_id in issued:  # every 201 the till got is a receipt the store holds
            assert client.get(f"/v1/receipts/{receipt_id}").json()["state"] == "accepted"
    report = status(stack)
    assert report["storage"]["failing"] is None
    assert not any("writes are failing" in f for f in report["findings"])
