"""The audit of what changed since the last cut (`agent/tools/powercut_auditor.py`) on a real
store file: it finds what the whole audit finds without reading every row, and falls back to
the whole audit when the journal it stood on is gone."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import offline_store as store
from agent.tools.powercut_audit import Findings
from agent.tools.powercut_auditor import Auditor
from agent.tools.powercut_till import Ledger
from offline_store.database import transaction
from tests.offline_store.factory import T0, issue, open_store


class Provider:
    """The provider's documents as the sandbox lists them (`?after_mark=`)."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def after(self, mark: int) -> list[dict[str, Any]]:
        return [doc for doc in self.documents if doc["mark"] > mark]


def _told(conn: sqlite3.Connection, ledger: Ledger, request_id: str) -> store.StoredDocument:
    doc = issue(conn, request_id)
    ledger.tell(
        request_id,
        "receipt",
        {
            "receipt_id": doc.id,
            "series": doc.series,
            "number": doc.number,
            "uid": doc.uid,
            "issued_at": doc.issued_at.isoformat(),
            "type": "11.1",
        },
    )
    return doc


def _accept(conn: sqlite3.Connection, doc: store.StoredDocument, mark: int) -> None:
    with transaction(conn):
        store.mark_accepted(
            conn, doc.id, mark=mark, authentication_code="AUTH", qr_url="https://q", now=T0
        )


def _auditor(tmp_path: Path, ledger: Ledger, provider: Provider) -> tuple[Auditor, Findings]:
    findings = Findings()
    auditor = Auditor(tmp_path / "archive", ledger, provider.after, findings, full_every=1000)
    return auditor, findings


def test_a_told_receipt_gone_behind_the_journals_back_is_found_without_the_whole_audit(
    tmp_path: Path,
) -> None:
    conn = open_store(tmp_path)
    ledger, provider = Ledger(), Provider()
    auditor, findings = _auditor(tmp_path, ledger, provider)
    gone = _told(conn, ledger, "r1")
    _told(conn, ledger, "r2")
    auditor.audit(conn, "cut 1")  # the first is the whole audit
    _told(conn, ledger, "r3")
    auditor.audit(conn, "cut 2")
    assert findings.clean and (auditor.audits, auditor.full_audits) == (2, 1)

    conn.execute("DROP TRIGGER documents_never_deleted")  # a store that lost a row silently
    conn.execute("DELETE FROM documents WHERE id = ?", (gone.id,))
    auditor.audit(conn, "cut 3")
    assert auditor.full_audits == 1
    assert findings.told_but_missing == 1, findings.problems


def test_a_mark_given_to_another_is_found_in_the_documents_the_journal_names(
    tmp_path: Path,
) -> None:
    conn = open_store(tmp_path)
    ledger, provider = Ledger(), Provider()
    auditor, findings = _auditor(tmp_path, ledger, provider)
    first, second = _told(conn, ledger, "r1"), _told(conn, ledger, "r2")
    _accept(conn, first, 400_000_000_000_001)
    provider.documents.append(
        {"uid": first.uid, "mark": 400_000_000_000_001, "series": "A", "number": first.number}
    )
    auditor.audit(conn, "cut 1")
    assert findings.clean, findings.problems

    provider.documents.append(
        {"uid": second.uid, "mark": 400_000_000_000_002, "series": "A", "number": second.number}
    )
    _accept(conn, second, 400_000_000_000_001)  # the MARK the provider gave the first
    auditor.audit(conn, "cut 2")
    assert auditor.full_audits == 1
    assert findings.wrong_marks >= 1, findings.problems


def test_a_journal_head_the_cut_took_back_falls_back_to_an_older_checkpoint(
    tmp_path: Path,
) -> None:
    """The second audit saw an entry a cut then took back (a background commit never synced):
    the third audit stands on the first audit's head and checks again everything told since."""
    conn = open_store(tmp_path)
    ledger, provider = Ledger(), Provider()
    auditor, findings = _auditor(tmp_path, ledger, provider)
    _told(conn, ledger, "r1")
    auditor.audit(conn, "cut 1")
    kept = store.journal_last_seq(conn)
    later = _told(conn, ledger, "r2")
    auditor.audit(conn, "cut 2")
    conn.execute("DROP TRIGGER journal_no_delete")
    conn.execute("DROP TRIGGER documents_never_deleted")
    conn.execute("DELETE FROM journal WHERE seq > ?", (kept,))  # the cut takes the tail back
    conn.execute("DELETE FROM documents WHERE id = ?", (later.id,))
    auditor.audit(conn, "cut 3")
    assert auditor.full_audits == 1
    assert findings.told_but_missing == 1, findings.problems  # told since the standing head
    assert findings.journal_broken == 0, findings.problems
