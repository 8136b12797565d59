"""Build realistic documents for store tests without depending on the agent package."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from offline_store import DocumentKind, NewDocument, StoredDocument, insert_document, transaction
from offline_store.database import open_database
from offline_store.migrations import MIGRATIONS, apply_migrations

ATHENS_WINTER = timezone(timedelta(hours=2))
ATHENS_SUMMER = timezone(timedelta(hours=3))
T0 = datetime(2026, 1, 15, 10, 0, tzinfo=ATHENS_WINTER)


def open_store(tmp_path: Path, name: str = "store.db") -> sqlite3.Connection:
    """A fresh, migrated store in the test's temporary directory."""
    return open_database(tmp_path / name, now=T0)


def builder(
    request_id: str,
    *,
    series: str = "A",
    payload: bytes | None = b'{"frozen":true}',
    total: Decimal = Decimal("12.40"),
    issued_at: datetime = T0,
    reserved_until: datetime | None = None,
) -> Callable[[int], NewDocument]:
    """The `build(number)` callback insert_document expects."""

    def build(number: int) -> NewDocument:
        return NewDocument(
            request_id=request_id,
            request_hash=f"hash-{request_id}",
            kind=DocumentKind.RECEIPT,
            type_code="11.1",
            issued_at=issued_at,
            uid=f"UID-{series}-{number}",
            internal_id=f"INT-{series}-{number}",
            request_json=f'{{"request_id":"{request_id}"}}',
            total_amount=total,
            payload=payload,
            reserved_until=reserved_until,
        )

    return build


def issue(
    conn: sqlite3.Connection,
    request_id: str,
    *,
    series: str = "A",
    now: datetime = T0,
    payload: bytes | None = b'{"frozen":true}',
    reserved_until: datetime | None = None,
) -> StoredDocument:
    """Insert one document in its own transaction."""
    with transaction(conn):
        return insert_document(
            conn,
            series,
            builder(request_id, series=series, payload=payload, reserved_until=reserved_until),
            now=now,
        )


def store_with_old_print_jobs(path: Path, jobs: int, layout: str) -> None:
    """A schema-6 file whose print jobs were written as print_jobs.py wrote them before schema 7
    with a spool a few jobs behind the tills: each job queued with its layout, then printed
    (layout NULL) once the next two were queued; one job still queued and one given up, both
    holding their layouts."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("PRAGMA journal_mode = WAL")
    apply_migrations(conn, MIGRATIONS[:6])
    at = "2026-01-15T10:00:00+02:00"
    for job_id in range(1, jobs + 1):
        state = {jobs - 1: "failed", jobs: "queued"}.get(job_id, "printing")
        conn.execute(
            "INSERT INTO print_jobs (id, document_id, copy, layout, state, created_at) "
            "VALUES (?, ?, 0, ?, ?, ?)",
            (job_id, job_id, layout, state, at),
        )
        conn.execute(
            "UPDATE print_jobs SET state = 'printed', printed_at = ?, layout = NULL "
            "WHERE id = ? AND state = 'printing'",
            (at, job_id - 2),
        )
    conn.execute(
        "UPDATE print_jobs SET state = 'printed', printed_at = ?, layout = NULL "
        "WHERE state = 'printing'",
        (at,),
    )
    conn.close()


_MENU = ("Ελληνικός καφές", "Φρέντο εσπρέσο", "Τυρόπιτα", "Νερό 500ml", "Κουλούρι", "Τσάι")


def cafe_payload(index: int) -> bytes:
    """A provider payload shaped like a café's: the same issuer block, a few menu lines."""
    lines = [
        {
            "LineNo": k + 1,
            "Descriptions": [_MENU[(index + k) % len(_MENU)]],
            "Quantity": 1 + (index + k) % 3,
            "UnitPrice": f"{2 + (index * 7 + k) % 5}.{(index * 3 + k) % 10}0",
            "VatCategoryCode": 2,
        }
        for k in range(1 + index % 4)
    ]
    body = {
        "Series": "ΑΛΠ",
        "Number": str(index),
        "DateIssued": f"2026-01-15T10:{index % 60:02d}:00",
        "Issuer": {
            "RegisteredName": "ΚΑΦΕΝΕΙΟ Η ΩΡΑΙΑ ΕΛΛΑΣ Ο.Ε.",
            "Vat": "EL094019245",
            "TaxOffice": "Δ.Ο.Υ. ΑΘΗΝΩΝ Α'",
            "Address": {"City": "Αθήνα", "Street": "Ερμού", "Number": "12", "Postal": "10563"},
        },
        "Details": lines,
    }
    return json.dumps(body, ensure_ascii=False).encode()


def issue_cafe(
    conn: sqlite3.Connection, first: int, count: int, *, now: datetime = T0
) -> list[int]:
    """Receipts `first` … `first + count - 1` with café payloads, each in its own transaction."""
    return [
        issue(conn, f"r{index}", payload=cafe_payload(index), now=now).id
        for index in range(first, first + count)
    ]
