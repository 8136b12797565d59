"""The state filesystem fills up while the till is issuing (a real tmpfs, so root only).

The promises: no 201 for a receipt the store does not hold; the till gets 503
`storage_unavailable` with `retryable: true`, never a bare 500; `status` goes CRITICAL naming
the storage and what to do; `/metrics` counts the refused writes; once space is freed the same
request_id goes through and the alarm clears."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import offline_store as store
from agent.commands.doctor import check_storage
from agent.config import load_config
from agent.core.answers import DocumentAnswer
from agent.core.status_report import Level, StatusReport
from agent.tools.local_stack import LocalStack, StackSettings, cash_receipt, post_json
from tests.e2e.stack import parsed, sample_value, wait_for

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


def status(stack: LocalStack) -> StatusReport:
    with stack.client() as client:
        return parsed(client.get("/v1/status"), StatusReport, 200)


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
            issued.append(parsed(response, DocumentAnswer).receipt_id)
    assert refused is not None, "the disk never filled"
    assert issued, "the disk was full before the first receipt: the boundary was not crossed"
    assert refused["status"] == 503, refused
    assert refused["error"]["code"] == "storage_unavailable"
    assert refused["error"]["retryable"] is True and refused["error"]["storage"] == "full"

    report = status(stack)
    assert report.exit_code is Level.CRITICAL
    assert report.storage is not None and report.storage.failing is not None
    assert report.storage.failing.startswith("full:")
    assert any(f.startswith("CRITICAL: storage: writes are failing") for f in report.findings)
    with stack.client() as client:
        metrics = client.get("/metrics").text
    assert sample_value(metrics, "pos_agent_storage_failures_total", fault="full")
    assert sample_value(metrics, "pos_agent_storage_writes_failing") == 1
    doctor = check_storage(load_config(stack.config_path))
    assert doctor.level is Level.CRITICAL and "MiB free" in doctor.hint, doctor

    filler.unlink()
    with stack.client() as client:
        retry = post_json(client, "/v1/receipts", cash_receipt(refused["request_id"]))
        assert retry.status_code in (200, 201), retry.text
        for receipt_id in issued:  # every 201 the till got is a receipt the store holds
            kept = parsed(client.get(f"/v1/receipts/{receipt_id}"), DocumentAnswer, 200)
            assert kept.state == "accepted"
    report = status(stack)
    assert report.storage is not None and report.storage.failing is None
    assert not any("writes are failing" in f for f in report.findings)


def test_an_answer_that_cannot_be_written_is_not_lost_and_the_receipt_still_prints(
    small_disk_stack: LocalStack,
) -> None:
    """The provider accepts while the disk fills: the till is told the receipt exists and must
    not be issued again; once space is back the sync records the provider's MARK (409) and the
    receipt is printed, once."""
    stack = small_disk_stack
    stack.set_faults("slow", delay_ms=2000)  # the answer comes after the disk is full
    till: dict[str, Any] = {}

    def sell() -> None:
        with stack.client() as client:
            response = post_json(client, "/v1/receipts", cash_receipt("full-after-1"))
            till.update(status=response.status_code, body=response.json())

    seller = threading.Thread(target=sell)
    seller.start()
    with closing(stack.open_store()) as conn:
        row = wait_for(
            lambda: store.get_by_request_id(conn, "full-after-1"),
            timeout_s=10,
            what="the frozen receipt",
        )
    filler = fill(stack.state_dir, leave_bytes=0)
    seller.join(timeout=30)

    assert till["status"] == 503, till
    error = till["body"]["error"]
    assert (error["code"], error["receipt_id"], error["retryable"]) == (
        "storage_unavailable",
        row.id,
        True,
    )
    assert "Do not issue it again" in error["message"]

    filler.unlink()
    stack.set_faults("ok")
    with stack.client() as client:
        assert client.post("/v1/sync").status_code == 200

        def printed() -> DocumentAnswer | None:
            answer = parsed(client.get(f"/v1/receipts/{row.id}"), DocumentAnswer, 200)
            return answer if answer.delivery.print.state == "printed" else None

        answer = wait_for(printed, timeout_s=20, what="the receipt accepted and printed")
        replay = post_json(client, "/v1/receipts", cash_receipt("full-after-1"))
    assert answer.state == "accepted" and answer.mark is not None
    # The provider's own answer, kept while the disk was full, not a 409 rebuilt from the MARK:
    # the receipt prints with the provider's QR and authentication code.
    assert answer.qr_url and answer.authentication_code, answer
    assert answer.delivery.print.copies is None  # printed once
    assert parsed(replay, DocumentAnswer, 200).receipt_id == row.id
    assert [d["uid"] for d in stack.provider_documents()].count(row.uid) == 1
