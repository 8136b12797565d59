"""End to end, retention: months of history beside the running daemon are archived, the journal
verifies across the archive, an archived receipt is read and reprinted over the socket, and
nothing delayed, rejected or unprinted leaves the live database; numbering goes on gap-free."""

from __future__ import annotations

import json
import lzma
from datetime import timedelta

import pytest

import offline_store as store
from agent.cli import main
from agent.clock import athens_now
from agent.config import load_config
from agent.core.answers import ReprintAnswer
from agent.core.maintenance import run_maintenance
from agent.core.status_report import StatusReport
from agent.tools.history import build_history, history_receipt
from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, parsed, wait_for

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack()

HISTORY_DAYS = 150


def test_a_month_is_archived_verified_and_an_archived_receipt_reprinted(
    stack: E2EStack, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(stack.stack.config_path)
    now = athens_now()
    oldest = now - timedelta(days=HISTORY_DAYS)
    # History written beside the running daemon with the daemon's own store code: one receipt
    # a day for 150 days, plus, on the oldest day, one of each that must never be archived.
    conn = store.open_database(config.database_path, check=False)
    try:
        with store.transaction(conn):
            stuck = {
                outcome: history_receipt(
                    conn, config, 10_000 + n, oldest - timedelta(hours=1), outcome=outcome
                ).id
                for n, outcome in enumerate(("delayed", "rejected", "print_failed"))
            }
        build_history(conn, config, HISTORY_DAYS, now=now, per_day=1, log=lambda _: None)
        numbers = store.last_numbers(conn)
    finally:
        conn.close()

    archived = 0
    while (done := run_maintenance(config, athens_now(), archive=True)).archived is not None:
        archived += done.archived.documents
    cutoff = store.archive_cutoff(now, config.retention.live_days)
    days = [oldest + timedelta(days=d) for d in range(HISTORY_DAYS)]
    assert archived == sum(1 for day in days if day < cutoff) >= 28  # a whole month at least

    with stack.database() as db:
        months = store.archive_months(db)
        assert {m.month for m in months} == {day.strftime("%Y-%m") for day in days if day < cutoff}
        assert store.archived_count(db) == archived
        for outcome, doc_id in stuck.items():
            doc = store.get_document(db, doc_id)
            assert doc is not None, f"{outcome} receipt left the live database"
        first_archived = min(m for m in (b.first_id for b in store.archive_batches(db)) if m)
        assert store.get_document(db, first_archived) is None

    # The technician's and the accountant's commands.
    assert main(["archive", "verify", "--config", str(config_path := stack.stack.config_path)]) == 0
    assert "history ok" in capsys.readouterr().out
    assert main(["archive", "list", "--config", str(config_path)]) == 0
    listing = capsys.readouterr().out
    assert all(m.month in listing and m.sha256 in listing for m in months)
    export = stack.stack.root / "export.jsonl"
    month = months[0].month
    assert (
        main(
            [
                "archive",
                "export",
                "--month",
                month,
                "--output",
                str(export),
                "--config",
                str(config_path),
            ]
        )
        == 0
    )
    exported = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    assert exported and all(r["issued_at"].startswith(month) and r["mark"] for r in exported)
    assert not {r["id"] for r in exported} & set(stuck.values())
    with lzma.open(config.archive_dir / months[0].file, "rt", encoding="utf-8") as handle:
        assert sum(1 for line in handle if '"type":"document"' in line) == months[0].documents

    # An archived receipt over the socket: read, and a copy printed.
    answer = stack.receipt(first_archived)
    assert answer.archived is True and answer.state == "accepted" and answer.mark
    response = stack.post(f"/v1/receipts/{first_archived}/print", {"request_id": "copy-arch-1"})
    job_id = parsed(response, ReprintAnswer).print_job_id
    replay = stack.post(f"/v1/receipts/{first_archived}/print", {"request_id": "copy-arch-1"})
    assert parsed(replay, ReprintAnswer).print_job_id == job_id  # the first answer, as it was

    def printed() -> bool:
        with stack.database() as db:
            jobs = store.print_jobs_for(db, first_archived)
            return bool(jobs) and jobs[-1].state == store.PrintState.PRINTED

    wait_for(printed, timeout_s=30, what="the archived receipt's copy to print")

    # Numbering goes on: the next receipt takes the next number; no gap, journal ok.
    issued = stack.issue(cash_receipt("after-archive-1"))
    assert issued.number == numbers[issued.series] + 1
    run_maintenance(config, athens_now(), archive=False)  # the journal slice status reads
    status = parsed(stack.get("/v1/status"), StatusReport, 200)
    assert status.store is not None
    database = status.store.database
    assert database.numbering_gaps == {}
    assert database.journal_ok is True
    assert database.archived_documents == archived
    with stack.database() as db:
        assert store.verify_history(db, config.archive_dir).ok
