"""A register's years of history, written fast with the daemon's own code (`bench --history`).

Every document goes through the same steps the daemon takes for an online receipt that was
printed: the fiscal builder prices the lines and builds the provider payload, `insert_document`
numbers and freezes it, `mark_accepted` records the MARK, `queue_print` builds the layout and
queues it, and the print spool's `mark_printing`/`mark_printed` complete the job. Only the HTTP
hop and the provider call are skipped, and thousands of documents share one transaction, so a
million receipts take minutes instead of days. The rows are therefore exactly what the daemon
writes (same columns, same journal entries, same compression), which is what the sizes and the
query costs measured on them are about. One shortcut: the print job's layout is a placeholder,
not the rendered receipt, because a printed job's layout is dropped in the same transaction
(schema 2) and rendering it was a third of the time; the stored rows are the same.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import offline_store as store
from agent.clock import ATHENS
from agent.config import AgentConfig
from agent.core.printable import printable_receipt
from agent.core.request_identity import canonical
from agent.fiscal.document_builder import (
    document_identity,
    identity_uid,
    price_lines,
    receipt_payload,
    series_for,
)
from agent.fiscal.provider_payloads import PaymentEntry
from agent.fiscal.receipt_model import ReceiptRequest
from agent.json_codec import dumps

# A busy café till: 500 receipts a day, so a million documents are about five and a half years.
RECEIPTS_PER_DAY = 500
BATCH = 2000
_ITEMS = (
    ("Ελληνικός καφές", "2.50", 2),
    ("Φρέντο εσπρέσο", "3.20", 2),
    ("Τυρόπιτα χωριάτικη", "2.80", 2),
    ("Νερό 500ml", "0.50", 2),
    ("Κουλούρι Θεσσαλονίκης", "0.90", 2),
    ("Χυμός πορτοκάλι φρέσκος", "3.80", 2),
    ("Σάντουιτς γαλοπούλα", "3.90", 2),
    ("Εφημερίδα", "2.00", 7),
    ("Τσάι του βουνού", "2.20", 2),
    ("Μπουγάτσα με κρέμα", "3.10", 2),
    ("Αναψυκτικό κουτί", "1.80", 1),
    ("Σοκολάτα γάλακτος", "1.60", 1),
)


# Dropped when the job is marked printed (in the same transaction): never stored for long.
_PLACEHOLDER_LAYOUT = '{"history":"layout dropped once printed"}'


@dataclass(frozen=True)
class HistoryBuilt:
    """What was written: documents, the span of issue dates and how long it took."""

    documents: int
    first_issued_at: datetime
    last_issued_at: datetime
    seconds: float


def history_request(index: int) -> ReceiptRequest:
    """Receipt `index` of the history: 1-6 lines, cash or card, a few with a customer's ΑΦΜ."""
    count = 1 + index % 6
    lines = []
    for k in range(count):
        name, price, vat = _ITEMS[(index * 7 + k * 5) % len(_ITEMS)]
        line: dict[str, object] = {
            "description": name,
            "quantity": 1 + (index + k) % 3,
            "unit_price": Decimal(price),
            "vat_category": vat,
        }
        if vat == 7:
            line["exemption_cause"] = 14
        lines.append(line)
    priced_total = sum(
        (Decimal(str(line["unit_price"])) * int(str(line["quantity"])) for line in lines),
        Decimal("0"),
    )
    payment: dict[str, object] = {"method": 3, "amount": priced_total}
    if index % 3 == 0:
        payment = {
            "method": 7,
            "amount": priced_total,
            "terminal_id": "16000198",
            "transaction_id": f"TX{index:012d}",
        }
    body: dict[str, object] = {
        "request_id": f"hist-{index:09d}",
        "lines": lines,
        "payments": [payment],
    }
    if index % 50 == 0:
        body["customer"] = {"name": "ΠΕΛΑΤΗΣ Α.Ε."}
    return ReceiptRequest.model_validate(body)


def build_history(
    conn: sqlite3.Connection,
    config: AgentConfig,
    count: int,
    *,
    now: datetime,
    per_day: int = RECEIPTS_PER_DAY,
    log: Callable[[str], None] = print,
) -> HistoryBuilt:
    """Write `count` accepted and printed receipts issued at an even pace over the days before
    `now` into the store opened read-write on `conn` (series counters continue where they are).
    """
    t0 = time.perf_counter()
    days = max(1, -(-count // per_day))
    start = (now - timedelta(days=days)).astimezone(ATHENS)
    step = timedelta(days=days) / max(count, 1)
    first = last = start
    for batch_start in range(0, count, BATCH):
        with store.transaction(conn, fsync=False):
            for index in range(batch_start, min(count, batch_start + BATCH)):
                last = (start + step * index).astimezone(ATHENS)
                if index == 0:
                    first = last
                history_receipt(conn, config, index, last)
        if batch_start and batch_start % (BATCH * 50) == 0:
            log(f"  history: {batch_start} documents written")
    return HistoryBuilt(count, first, last, time.perf_counter() - t0)


def history_receipt(
    conn: sqlite3.Connection,
    config: AgentConfig,
    index: int,
    at: datetime,
    *,
    outcome: str = "printed",
) -> store.StoredDocument:
    """Receipt `index` of the history, with the daemon's store calls in the daemon's order
    (issuing.py, transmission.py, print_orders.py, daemon/print_spool.py), in the caller's
    transaction. `outcome`: "printed" (online, accepted, printed), "print_failed" (accepted,
    the printer gave up), "delayed" (offline, code 1, next attempt in a year) or "rejected"."""
    series = series_for(config, "11.1")
    request = history_request(index)
    stored = canonical(request)
    priced = price_lines(request.lines, prices_include_vat=config.pricing.prices_include_vat)
    payments = [
        PaymentEntry(
            method=p.method,
            amount=p.amount,
            tip=p.tip,
            terminal_id=p.terminal_id,
            transaction_id=p.transaction_id,
            pos_input=None,
            provider_signature=None,
        )
        for p in request.payments
    ]

    def build(number: int) -> store.NewDocument:
        identity = document_identity("11.1", series, number, at)
        return store.NewDocument(
            request_id=request.request_id,
            request_hash=stored.digest,
            kind=store.DocumentKind.RECEIPT,
            type_code="11.1",
            issued_at=at,
            uid=identity_uid(config, identity),
            internal_id=identity.internal_id,
            request_json=stored.json,
            total_amount=priced.totals.gross,
            payload=dumps(receipt_payload(config, identity, request, priced, payments)),
        )

    doc = store.insert_document(conn, series, build, now=at)
    if outcome == "delayed":
        return store.mark_delayed(
            conn,
            doc.id,
            code=1,
            due_at=at + timedelta(days=1),
            next_attempt_at=at + timedelta(days=365),
            error="provider unreachable",
            now=at,
        )
    if outcome == "rejected":
        return store.mark_rejected(conn, doc.id, error="the provider refused the data", now=at)
    auth = hashlib.sha256(doc.uid.encode()).hexdigest()[:40].upper()
    accepted = store.mark_accepted(
        conn,
        doc.id,
        mark=400_000_000_000_000 + doc.id,
        authentication_code=auth,
        qr_url=f"{config.provider.portal_url}/v/{auth[:24].lower()}",
        now=at,
    )
    layout = _PLACEHOLDER_LAYOUT if outcome == "printed" else _layout(config, accepted)
    job_id = store.enqueue_print(conn, doc.id, layout, copy=False, now=at)
    printed_at = at + timedelta(seconds=1)
    store.mark_printing(conn, job_id, now=printed_at)
    if outcome == "print_failed":
        store.fail_print(conn, job_id, reason="paper out", now=printed_at)
    else:
        store.mark_printed(conn, job_id, now=printed_at)
    return accepted


def _layout(config: AgentConfig, doc: store.StoredDocument) -> str:
    """The real layout, for a job that stays in the spool (not printed)."""
    return printable_receipt(config, doc, copy=False).to_json()
