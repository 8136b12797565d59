"""The X report on paper against the real daemon and the file printer: through the daemon's
socket (`POST /v1/reports/day/print` and `pos-agent report day --print`) the slip titled X comes
out of the printer worker, and nothing is kept: no closing, no print job, no journal entry."""

from __future__ import annotations

import pytest

from agent.cli import main
from agent.core.day_report import DayReport
from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, parsed, wait_for

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack(printer_backend="file")

TITLE = "ΑΝΑΦΟΡΑ X".encode("cp1253")


def _kept(stack: E2EStack) -> tuple[int, int, int]:
    with stack.database() as conn:
        return (
            conn.execute("SELECT COUNT(*) FROM closings").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM print_jobs").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0],
        )


def test_the_x_slip_comes_out_of_the_printer_and_nothing_is_kept(
    stack: E2EStack, capsys: pytest.CaptureFixture[str]
) -> None:
    paper = stack.stack.printer_path
    assert stack.post("/v1/receipts", cash_receipt("x-print-1")).status_code == 201

    def receipt_printed() -> bool:
        with stack.database() as conn:
            states = [row[0] for row in conn.execute("SELECT state FROM print_jobs")]
        return states == ["printed"]

    wait_for(receipt_printed, timeout_s=20, what="the receipt printed")
    before = _kept(stack)

    answer = parsed(stack.post("/v1/reports/day/print", {}), DayReport, 200)
    assert answer.kind == "X" and answer.sales.documents == 1
    wait_for(lambda: paper.exists() and TITLE in paper.read_bytes(), timeout_s=20, what="X slip")
    printed = paper.read_bytes()
    assert "Ενημερωτική, όχι κλείσιμο".encode("cp1253") in printed
    assert "ΑΝΑΦΟΡΑ Z".encode("cp1253") not in printed
    assert _kept(stack) == before, "an X print keeps no closing, print job or journal entry"

    paper.write_bytes(b"")
    config = str(stack.stack.config_path)
    assert main(["report", "day", "--print", "--config", config]) == 0
    assert "ΑΝΑΦΟΡΑ X" in capsys.readouterr().out
    wait_for(lambda: TITLE in paper.read_bytes(), timeout_s=20, what="the CLI's X slip")
    assert _kept(stack) == before

    refused = stack.post("/v1/reports/day/print?date=2026-13-01", {})
    assert refused.status_code == 422 and "date" in refused.text
