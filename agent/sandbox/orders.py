"""The sandbox's food-service ledger: 8.6 order slips per issuer and table, what cancelled them
and which receipt closed them (docs/provider.md §13).

Rules it enforces, as a provider must for AADE: an 8.6 needs its `tableId`; a cancellation
(`totalCancelDeliveryOrders: true`) names open 8.6 MARKs of the same issuer and table; a receipt
may connect an 8.6 MARK only while it is open (not cancelled, not closed), and the 8.6 it
connects belong to one table; a catering receipt (`SpecialInvoiceCategory` 12) connects only
open 8.6 MARKs of its issuer. The table's pool, as the provider's QA suite exercises it (TC 07.1,
08, 09): an 8.6 stays open, and connectable again, until the receipts that connected the table's
orders cover them (a split bill, a partial payment); the receipt that covers them closes every
8.6 it connects. An 11.4 connected to a table's orders counts as money given back. The checks
run before the document is accepted; the ledger is written right after the document (same
event-loop step, so no other request sees the gap).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from agent.sandbox.documents import CheckedDocument

ORDER_TYPE = "8.6"
CATERING_CATEGORY = 12

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fnb_orders (
    mark INTEGER PRIMARY KEY,
    issuer_vat TEXT NOT NULL,
    table_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    gross TEXT NOT NULL,
    state TEXT NOT NULL,
    settled_by INTEGER,
    accepted_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fnb_orders_table ON fnb_orders (issuer_vat, table_id, state);
CREATE TABLE IF NOT EXISTS fnb_receipts (
    mark INTEGER PRIMARY KEY,
    issuer_vat TEXT NOT NULL,
    table_id TEXT NOT NULL,
    gross TEXT NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0
);
"""
CREDIT_TYPE = "11.4"


@dataclass(frozen=True)
class FnbFacts:
    """What the food-service rules read from a posted document (keys folded to lower case)."""

    invoice_type: str
    table_id: str | None
    cancel: bool
    is_return: bool
    connected: list[int]
    special_category: int
    gross: Decimal

    @classmethod
    def of(cls, body: dict[str, Any], doc: CheckedDocument) -> FnbFacts:
        table = body.get("tableid")
        marks = body.get("multipleconnectedmarks") or []
        details = body.get("details") or []
        summaries = body.get("summaries") or {}
        return cls(
            invoice_type=doc.invoice_type,
            table_id=str(table) if isinstance(table, str | int) and str(table) else None,
            cancel=body.get("totalcanceldeliveryorders") is True,
            is_return=any(isinstance(d, dict) and d.get("recordtypecode") == 7 for d in details),
            connected=[m for m in marks if isinstance(m, int) and not isinstance(m, bool)],
            special_category=body.get("specialinvoicecategory") or 0,
            gross=Decimal(summaries.get("totalgrossvalue", 0)),
        )


class OrderBook:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._db.executescript(_SCHEMA)

    def errors(self, facts: FnbFacts, issuer_vat: str) -> list[tuple[str, str]]:
        """The food-service rules this document breaks (empty: it may be accepted)."""
        if facts.invoice_type == ORDER_TYPE:
            if facts.table_id is None:
                return [("tableId", "is required on an 8.6 order slip")]
            if facts.cancel:
                if not facts.connected:
                    return [("multipleConnectedMarks", "a cancellation names the MARKs to cancel")]
                return self._connect_errors(facts.connected, issuer_vat, table=facts.table_id)
            return []
        known = [m for m in facts.connected if self._order(m) is not None]
        tables = {row["table_id"] for m in known if (row := self._order(m)) is not None}
        if len(tables) > 1:
            return [("multipleConnectedMarks", f"connects 8.6 of tables {sorted(tables)}")]
        if facts.special_category != CATERING_CATEGORY:
            return self._connect_errors(known, issuer_vat, table=None)
        # A catering receipt may also connect the 8.4 that carried its card payment; any other
        # MARK it connects must be an open order slip of this issuer.
        pos_receipts = {m for m in facts.connected if self._is_pos_receipt(m)}
        check = [m for m in facts.connected if m not in pos_receipts]
        return self._connect_errors(check, issuer_vat, table=None)

    def _is_pos_receipt(self, mark: int) -> bool:
        row = self._db.execute(
            "SELECT invoice_type FROM documents WHERE mark = ?", (mark,)
        ).fetchone()
        return (
            row is not None
            and str(row["invoice_type"]).startswith("8.")
            and str(row["invoice_type"]) != ORDER_TYPE
        )

    def record(self, facts: FnbFacts, issuer_vat: str, mark: int, at: datetime) -> None:
        """After the document was accepted under `mark`."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if facts.invoice_type == ORDER_TYPE:
                kind = "cancel" if facts.cancel else "return" if facts.is_return else "order"
                self._db.execute(
                    "INSERT INTO fnb_orders (mark, issuer_vat, table_id, kind, gross, state,"
                    " accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        mark,
                        issuer_vat,
                        facts.table_id,
                        kind,
                        str(facts.gross),
                        "cancellation" if facts.cancel else "open",
                        at.isoformat(),
                    ),
                )
                if facts.cancel:
                    self._settle(facts.connected, "cancelled", mark)
            else:
                self._pay(facts, issuer_vat, mark)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _pay(self, facts: FnbFacts, issuer_vat: str, mark: int) -> None:
        """A receipt connecting open 8.6: it pays the table; once the table's receipts cover the
        orders it connects, they close."""
        rows = [row for m in facts.connected if (row := self._order(m)) is not None]
        rows = [row for row in rows if row["state"] == "open"]
        if not rows:
            return
        table = rows[0]["table_id"]
        gross = -facts.gross if facts.invoice_type == CREDIT_TYPE else facts.gross
        self._db.execute(
            "INSERT INTO fnb_receipts (mark, issuer_vat, table_id, gross) VALUES (?, ?, ?, ?)",
            (mark, issuer_vat, table, str(gross)),
        )
        due = sum((_signed(row) for row in rows), Decimal(0))
        paid = sum(
            (
                Decimal(row["gross"])
                for row in self._db.execute(
                    "SELECT gross FROM fnb_receipts WHERE issuer_vat = ? AND table_id = ?"
                    " AND settled = 0",
                    (issuer_vat, table),
                )
            ),
            Decimal(0),
        )
        if paid >= due:
            self._settle([row["mark"] for row in rows], "closed", mark)
            self._db.execute(
                "UPDATE fnb_receipts SET settled = 1 WHERE issuer_vat = ? AND table_id = ?",
                (issuer_vat, table),
            )

    def orders(self, table: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM fnb_orders"
        params: tuple[str, ...] = ()
        if table is not None:
            sql += " WHERE table_id = ?"
            params = (table,)
        return [dict(row) for row in self._db.execute(sql + " ORDER BY mark", params)]

    def open_for(self, issuer_vat: str) -> list[dict[str, Any]]:
        """The issuer's open order slips (returns too; cancellations never), by MARK, with the
        document each is: what the open-orders list gives (`listing.py`). A document the
        provider lost (`lose`) is no longer listed."""
        rows = self._db.execute(
            "SELECT o.mark, o.table_id, o.gross, o.kind, d.uid, d.internal_id, d.series, "
            "d.number, d.date_issued FROM fnb_orders o JOIN documents d ON d.mark = o.mark "
            "WHERE o.issuer_vat = ? AND o.state = 'open' AND o.kind != 'cancel' ORDER BY o.mark",
            (issuer_vat,),
        ).fetchall()
        return [dict(row) for row in rows]

    def _settle(self, marks: list[int], state: str, by: int) -> None:
        self._db.executemany(
            "UPDATE fnb_orders SET state = ?, settled_by = ? WHERE mark = ? AND state = 'open'",
            [(state, by, mark) for mark in marks],
        )

    def _order(self, mark: int) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM fnb_orders WHERE mark = ? AND kind != 'cancel'", (mark,)
        ).fetchone()
        return row

    def _connect_errors(
        self, marks: list[int], issuer_vat: str, *, table: str | None
    ) -> list[tuple[str, str]]:
        errors = []
        for index, mark in enumerate(marks):
            key = f"multipleConnectedMarks[{index}]"
            row = self._order(mark)
            if row is None or row["issuer_vat"] != issuer_vat:
                errors.append((key, f"{mark} is not an 8.6 order slip of this issuer"))
            elif row["state"] != "open":
                errors.append(
                    (key, f"8.6 {mark} is already {row['state']} (by {row['settled_by']})")
                )
            elif table is not None and row["table_id"] != table:
                errors.append((key, f"8.6 {mark} belongs to table {row['table_id']}, not {table}"))
        return errors


def _signed(row: sqlite3.Row) -> Decimal:
    """What an 8.6 adds to its table's bill: a return takes its amount off."""
    gross = Decimal(row["gross"])
    return -gross if row["kind"] == "return" else gross
