"""The sandbox's own SQLite file: accepted documents, issued signatures, payment MARKs.

Persisted so that a restarted sandbox still answers 409 for a UID it accepted before. All access
happens on the server's event-loop thread between awaits, so check-then-insert is atomic without
locks. WAL with `synchronous=NORMAL` keeps each commit a plain append (no fsync; a kill -9 loses
nothing, only a power cut could), and the WAL is checkpointed from another thread
(`checkpoint.py`). An accepted document writes three pages: the MARK is the documents' rowid, and
`marks` has no AUTOINCREMENT (nothing is deleted, so max(id) + 1 is the id it would have given);
`received` keeps what each document carried (connected MARKs, gross, payments) for the tests.
State files from before keep their schema; the statements work on both.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.sandbox.checkpoint import Checkpointer
from agent.sandbox.documents import CheckedDocument
from agent.sandbox.orders import OrderBook

MARK_BASE = 400_000_000_000_000  # 15 digits, like real myDATA MARKs

_SCHEMA = """
CREATE TABLE IF NOT EXISTS marks (id INTEGER PRIMARY KEY, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    uid TEXT NOT NULL UNIQUE,
    mark INTEGER PRIMARY KEY,
    issuer_vat TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    series TEXT NOT NULL,
    number TEXT NOT NULL,
    invoice_type TEXT NOT NULL,
    date_issued TEXT NOT NULL,
    internal_id TEXT NOT NULL,
    is_delayed_code INTEGER NOT NULL,
    authentication_code TEXT NOT NULL,
    signature TEXT NOT NULL,
    submissions INTEGER NOT NULL DEFAULT 1,
    accepted_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signatures (
    input TEXT PRIMARY KEY,
    signature TEXT NOT NULL,
    uid TEXT NOT NULL,
    mark INTEGER,
    issuer_vat TEXT NOT NULL,
    duration TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS correlations (
    mark INTEGER NOT NULL,
    correlated_mark INTEGER NOT NULL,
    PRIMARY KEY (mark, correlated_mark)
);
CREATE TABLE IF NOT EXISTS payments (
    payment_mark INTEGER PRIMARY KEY,
    mark INTEGER NOT NULL,
    posted_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS received (
    mark INTEGER PRIMARY KEY,
    connected TEXT NOT NULL,
    gross TEXT NOT NULL,
    payments TEXT NOT NULL,
    special_category INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Received:
    """What an accepted document carried that a test of a flow asserts on: the MARKs it
    connects, its gross, its payments (method code and amount), its special category."""

    connected: list[int]
    gross: str
    payments: list[dict[str, Any]]
    special_category: int

    @classmethod
    def of(cls, body: Any) -> Received:
        """From a folded body: an invoice's `Summaries` and `PaymentDetails`, or a POS
        receipt's `totalAmount` and card lines."""
        body = body if isinstance(body, dict) else {}
        marks = body.get("multipleconnectedmarks") or []
        summaries = body.get("summaries")
        if isinstance(summaries, dict):
            gross = summaries.get("totalgrossvalue", 0)
            details = body.get("paymentdetails") or {}
            methods = details.get("paymentmethods") or [] if isinstance(details, dict) else []
            payments = [
                {"method": m.get("paymentmethodtypecode"), "amount": str(m.get("amount"))}
                for m in methods
                if isinstance(m, dict)
            ]
        else:
            gross = body.get("totalamount", 0)
            payments = [
                {"method": 7, "amount": str(line.get("amount"))}
                for line in body.get("cardlines") or []
                if isinstance(line, dict)
            ]
        return cls(
            connected=[m for m in marks if isinstance(m, int) and not isinstance(m, bool)],
            gross=str(gross),
            payments=payments,
            special_category=int(body.get("specialinvoicecategory") or 0),
        )


@dataclass(frozen=True)
class IssuedSignature:
    input: str
    signature: str
    uid: str
    mark: int | None
    issuer_vat: str
    duration: str
    issued_at: datetime
    expires_at: datetime


class SandboxStore:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.executescript(_SCHEMA)
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(documents)")}
        if "total" not in columns:  # a state file from before the document list
            self._db.execute("ALTER TABLE documents ADD COLUMN total TEXT")
        self._checkpointer = Checkpointer(path)
        self.orders = OrderBook(self._db)

    def close(self) -> None:
        self._checkpointer.stop()
        self._db.close()

    def mark_of(self, uid: str) -> int | None:
        """The MARK of an accepted UID, counting this lookup as one more submission."""
        row = self._db.execute(
            "UPDATE documents SET submissions = submissions + 1 WHERE uid = ? RETURNING mark",
            (uid,),
        ).fetchone()
        return None if row is None else int(row["mark"])

    def accept(
        self,
        doc: CheckedDocument,
        *,
        endpoint: str,
        authentication_code: str,
        signature: str,
        accepted_at: datetime,
    ) -> int:
        """Store the document under a fresh, increasing MARK and return the MARK."""
        with self._transaction():
            mark = self._next_mark("document")
            self._db.execute(
                "INSERT INTO documents (uid, mark, issuer_vat, endpoint, series, number,"
                " invoice_type, date_issued, internal_id, is_delayed_code, authentication_code,"
                " signature, accepted_at, total) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    doc.uid,
                    mark,
                    doc.issuer_vat,
                    endpoint,
                    doc.series,
                    doc.number,
                    doc.invoice_type,
                    doc.date_issued,
                    doc.internal_id,
                    doc.is_delayed_code,
                    authentication_code,
                    signature,
                    accepted_at.isoformat(),
                    None if doc.total is None else format(doc.total, "f"),
                ),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO correlations (mark, correlated_mark) VALUES (?, ?)",
                [(mark, correlated) for correlated in doc.correlated],
            )
        return mark

    def uid_of_mark(self, mark: int, issuer_vat: str) -> str | None:
        row = self._db.execute(
            "SELECT uid FROM documents WHERE mark = ? AND issuer_vat = ?", (mark, issuer_vat)
        ).fetchone()
        return None if row is None else str(row["uid"])

    def endpoint_of_mark(self, mark: int) -> str | None:
        """`invoice` or `receipt`: which endpoint accepted the document with this MARK."""
        row = self._db.execute("SELECT endpoint FROM documents WHERE mark = ?", (mark,)).fetchone()
        return None if row is None else str(row["endpoint"])

    def record_payment(self, mark: int, posted_at: datetime) -> int:
        with self._transaction():
            payment_mark = self._next_mark("payment")
            self._db.execute(
                "INSERT INTO payments (payment_mark, mark, posted_at) VALUES (?,?,?)",
                (payment_mark, mark, posted_at.isoformat()),
            )
        return payment_mark

    def record_signature(self, issued: IssuedSignature) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO signatures (input, signature, uid, mark, issuer_vat, duration,"
            " issued_at, expires_at) VALUES (?,?,?,?,?,?,?,?)",
            (
                issued.input,
                issued.signature,
                issued.uid,
                issued.mark,
                issued.issuer_vat,
                issued.duration,
                issued.issued_at.isoformat(),
                issued.expires_at.isoformat(),
            ),
        )

    def signature_for(self, input_text: str) -> IssuedSignature | None:
        row = self._db.execute("SELECT * FROM signatures WHERE input = ?", (input_text,)).fetchone()
        if row is None:
            return None
        return IssuedSignature(
            input=row["input"],
            signature=row["signature"],
            uid=row["uid"],
            mark=row["mark"],
            issuer_vat=row["issuer_vat"],
            duration=row["duration"],
            issued_at=datetime.fromisoformat(row["issued_at"]),
            expires_at=datetime.fromisoformat(row["expires_at"]),
        )

    def record_received(self, mark: int, received: Received) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO received (mark, connected, gross, payments, special_category)"
            " VALUES (?,?,?,?,?)",
            (
                mark,
                json.dumps(received.connected),
                received.gross,
                json.dumps(received.payments),
                received.special_category,
            ),
        )

    def documents(self, after_mark: int = 0) -> list[dict[str, Any]]:
        """Every accepted document, with what it carried (`connected`, `gross`, `payments`,
        `special_category`); with `after_mark` only those accepted since (a MARK is given once
        a document is stored, in the same transaction, so MARKs list in the order stored)."""
        rows = self._db.execute(
            "SELECT d.uid, d.mark, d.endpoint, d.series, d.number, d.invoice_type AS type,"
            " d.date_issued, d.internal_id, d.is_delayed_code, d.submissions, d.accepted_at,"
            " r.connected, r.gross, r.payments, r.special_category"
            " FROM documents d LEFT JOIN received r ON r.mark = d.mark WHERE d.mark > ?"
            " ORDER BY d.mark",
            (after_mark,),
        ).fetchall()
        correlated: dict[int, list[int]] = {}
        for row in self._db.execute(
            "SELECT mark, correlated_mark FROM correlations ORDER BY rowid"
        ):
            correlated.setdefault(int(row["mark"]), []).append(int(row["correlated_mark"]))
        documents = []
        for row in rows:
            document = dict(row)
            for key in ("connected", "payments"):
                document[key] = json.loads(row[key]) if row[key] is not None else []
            document["correlated"] = correlated.get(row["mark"], [])
            documents.append(document)
        return documents

    def issued_between(
        self, issuer_vat: str, first_day: str, last_day: str
    ) -> list[dict[str, Any]]:
        """The issuer's documents dated `first_day`..`last_day` (YYYY-MM-DD), by MARK: what
        `getdocuments` lists (page by page)."""
        rows = self._db.execute(
            "SELECT uid, mark, series, number, invoice_type, date_issued, internal_id, total, "
            "is_delayed_code FROM documents WHERE issuer_vat = ? "
            "AND substr(date_issued, 1, 10) BETWEEN ? AND ? ORDER BY mark",
            (issuer_vat, first_day, last_day),
        ).fetchall()
        return [dict(row) for row in rows]

    def lose(self, uid: str) -> bool:
        """Forget an accepted document, as a provider that lost it would: it is no longer
        listed, and sending it again registers it anew."""
        return self._db.execute("DELETE FROM documents WHERE uid = ?", (uid,)).rowcount == 1

    def _next_mark(self, kind: str) -> int:
        cursor = self._db.execute("INSERT INTO marks (kind) VALUES (?)", (kind,))
        assert cursor.lastrowid is not None
        return MARK_BASE + cursor.lastrowid

    def _transaction(self) -> sqlite3.Connection:
        """`with` on the connection commits or rolls back; autocommit mode needs an explicit BEGIN."""
        self._db.execute("BEGIN IMMEDIATE")
        return self._db
