"""A register's years of history, written fast with the daemon's own code (`bench --history`).

Every document goes through the same steps the daemon takes for an online receipt that was
printed: the fiscal builder prices the lines and builds the provider payload, `insert_document`
numbers and freezes it, `mark_accepted` records the MARK, `queue_print` builds the layout and
queues it, and the print spool's `mark_printing`/`mark_printed` complete the job. One receipt in
three is paid by card through the terminal, as the law wants it (Α.1155/2023): the sign call
reserves the number and stores the provider's signature and its remembered answer
(core/card_payments.py), then the receipt takes the reservation over, freezes its payload with
the signature and marks the signature used (core/issuing.py). The packing dictionary is
learned as the daemon learns it: between the first receipts until one fills its sample
(core/maintenance.py `FirstDictionary`), then by the maintenance job once a simulated month.
Only the HTTP hop and the provider call are skipped, and thousands of documents share one
transaction, so a million receipts take minutes instead of days. The rows are therefore
exactly what the daemon writes (same columns, same journal entries, same compression), which
is what the sizes and the query costs measured on them are about:
tests/tools/test_history_rows.py compares every column's size in every table with receipts
sold through the daemon's socket, and `bench --history` measures both
(agent/tools/socket_sample.py). One shortcut: the print job's layout is a placeholder, not the
rendered receipt, because a layout lives in `print_layouts` only until its job is printed
(schema 5), here in the same transaction, and rendering it was a third of the time; the rows
left behind are the same.
"""

from __future__ import annotations

import base64
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
from agent.core.card_payments import SignedFor, cents, parse_signed_input, record_signature
from agent.core.issuing import Draft, payment_entries
from agent.core.printable import printable_receipt
from agent.core.request_identity import canonical
from agent.elise.outcomes import Signed
from agent.fiscal.document_builder import (
    DocumentIdentity,
    document_identity,
    price_lines,
    receipt_payload,
    series_for,
)
from agent.fiscal.receipt_model import PaymentSignRequest, ReceiptRequest
from agent.json_codec import dumps
from offline_store.dictionaries import MIN_DOCUMENTS, SAMPLE_BYTES

# A busy café till: 500 receipts a day, so a million documents are about five and a half years.
RECEIPTS_PER_DAY = 500
BATCH = 2000
TERMINAL_ID = "16000198"
# One receipt in CARD_EVERY is paid by card (signed through the terminal); 0: none.
CARD_EVERY = 3
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


def history_request(
    index: int, *, signature_id: int | None = None, card_every: int = CARD_EVERY
) -> ReceiptRequest:
    """Receipt `index` of the history: 1-6 lines, cash or (one in `card_every`) a card payment
    signed as `signature_id`, a few with a customer's name."""
    lines = history_lines(index)
    payment: dict[str, object] = {"method": 3, "amount": _total(lines)}
    if card_every and index % card_every == 0:
        payment = {
            "method": 7,
            "amount": _total(lines),
            "terminal_id": TERMINAL_ID,
            "transaction_id": f"TX{index:012d}",
            "signature_id": signature_id,
        }
    body: dict[str, object] = {
        "request_id": f"hist-{index:09d}",
        "lines": lines,
        "payments": [payment],
    }
    if index % 50 == 0:
        body["customer"] = {"name": "ΠΕΛΑΤΗΣ Α.Ε."}
    return ReceiptRequest.model_validate(body)


def history_lines(index: int) -> list[dict[str, object]]:
    lines = []
    for k in range(1 + index % 6):
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
    return lines


def _total(lines: list[dict[str, object]]) -> Decimal:
    return sum(
        (Decimal(str(line["unit_price"])) * int(str(line["quantity"])) for line in lines),
        Decimal("0"),
    )


def build_history(
    conn: sqlite3.Connection,
    config: AgentConfig,
    count: int,
    *,
    now: datetime,
    per_day: int = RECEIPTS_PER_DAY,
    card_every: int = CARD_EVERY,
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
    early = True
    for batch_start in range(0, count, BATCH):
        with store.transaction(conn, fsync=False):
            if batch_start:  # the daemon's maintenance job: a new dictionary once a month
                store.learn_dictionary(conn, now=(start + step * batch_start).astimezone(ATHENS))
            for index in range(batch_start, min(count, batch_start + BATCH)):
                # Whole seconds, as the daemon's clock (agent/clock.py) stamps every row.
                last = (start + step * index).astimezone(ATHENS).replace(microsecond=0)
                if index == 0:
                    first = last
                # FirstDictionary: from the history's own first receipts (a dictionary the
                # bench's daemon learned before, dated after them, does not hold it off).
                if early and MIN_DOCUMENTS <= index < BATCH:
                    learned = store.learn_dictionary(conn, now=last)
                    early = learned is None or learned.bytes < SAMPLE_BYTES
                history_receipt(conn, config, index, last, card_every=card_every)
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
    card_every: int = CARD_EVERY,
) -> store.StoredDocument:
    """Receipt `index` of the history, with the daemon's store calls in the daemon's order
    (issuing.py, transmission.py, print_orders.py, daemon/print_spool.py), in the caller's
    transaction. `outcome`: "printed" (online, accepted, printed), "print_failed" (accepted,
    the printer gave up), "delayed" (offline, code 1, next attempt in a year) or "rejected".
    Where the daemon commits, the journal closes a unit (`close_journal_unit`): its entries keep
    the hashes the daemon's do."""
    unit = store.close_journal_unit
    unit(conn)
    series = series_for(config, "11.1")
    request = history_request(index, card_every=card_every)
    priced = price_lines(request.lines, prices_include_vat=config.pricing.prices_include_vat)
    signed = None
    if request.payments[0].method == 7 and outcome == "printed":
        signed = _sign(conn, config, series, index, priced.totals.gross, at)
        request = history_request(index, signature_id=signed.id, card_every=card_every)
    stored = canonical(request)
    payments = payment_entries(request.payments, {0: signed} if signed else {})

    draft = Draft(request.request_id, stored, "11.1", priced.totals.gross)

    def build(identity: DocumentIdentity) -> bytes:
        return dumps(receipt_payload(config, identity, request, priced, payments))

    if signed is None:
        doc = store.insert_document(
            conn,
            series,
            lambda number: draft.new_document(config, series, number, at, build=build),
            now=at,
        )
    else:  # core/issuing.py, _freeze: the reservation taken over, frozen, its signature used
        reservation = draft.take_over(
            conn, signed.document_id, reserved_until=at + timedelta(seconds=1), now=at
        )
        identity = document_identity("11.1", series, reservation.number, reservation.issued_at)
        doc = store.freeze_payload(
            conn, reservation.id, build(identity), now=at, signature_id=signed.id
        )
        store.mark_signature_used(conn, signed.id, now=at)
    unit(conn)
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
    return accept_and_print(conn, config, doc, at, outcome=outcome)


def accept_and_print(
    conn: sqlite3.Connection,
    config: AgentConfig,
    doc: store.StoredDocument,
    at: datetime,
    *,
    outcome: str = "printed",
) -> store.StoredDocument:
    """The provider's MARK as the sandbox answers it, with the print job in the outcome's
    transaction, then the spool's two (transmission.py, daemon/print_spool.py)."""
    unit = store.close_journal_unit
    auth = hashlib.sha256(doc.uid.encode()).hexdigest()[:40].upper()
    accepted = store.mark_accepted(
        conn,
        doc.id,
        mark=400_000_000_000_000 + doc.id,
        authentication_code=auth,
        # As the sandbox answers (`url`: the portal and a 48-character signature).
        qr_url=f"{config.provider.portal_url}/v/{hashlib.sha256(auth.encode()).hexdigest()[:48]}",
        now=at,
    )
    layout = _PLACEHOLDER_LAYOUT if outcome == "printed" else _layout(config, accepted)
    job_id = store.enqueue_print(conn, doc.id, layout, copy=False, now=at)
    unit(conn)
    printed_at = at  # the spool prints at once: nearly always in the second it was queued
    store.mark_printing(conn, job_id, now=printed_at)
    unit(conn)
    if outcome == "print_failed":
        store.fail_print(conn, job_id, reason="paper out", now=printed_at)
    else:
        store.mark_printed(conn, job_id, now=printed_at)
    return accepted


def _sign(
    conn: sqlite3.Connection,
    config: AgentConfig,
    series: str,
    index: int,
    amount: Decimal,
    at: datetime,
) -> store.StoredSignature:
    """POST /v1/payments/sign for receipt `index`: a reservation of the next number, the
    provider's signature over its UID and amounts, and the answer a replay gets."""
    sign = PaymentSignRequest.model_validate(
        {
            "request_id": f"sign-{index:09d}",
            "terminal_id": TERMINAL_ID,
            "amount": amount,
            "document_type": "11.1",
            "lines": history_lines(index),
        }
    )
    stored = canonical(sign)
    priced = price_lines(sign.lines, prices_include_vat=config.pricing.prices_include_vat)
    draft = Draft(f"sign:{sign.request_id}", stored, "11.1", priced.totals.gross)
    reserved_until = at + timedelta(seconds=config.terminal.reservation_timeout_s)
    doc = store.insert_document(
        conn,
        series,
        lambda number: draft.new_document(
            config, series, number, at, build=None, reserved_until=reserved_until
        ),
        now=at,
    )
    store.close_journal_unit(conn)  # committed before the terminal's call
    totals = priced.totals
    text = ";".join(
        [
            doc.uid,
            "",
            at.strftime("%Y%m%d%H%M%S"),
            *(str(cents(v)) for v in (totals.net, totals.vat, totals.gross, amount)),
            TERMINAL_ID,
        ]
    )
    # An ECDSA P-256 signature in DER is 70-72 bytes, 96 characters of base64.
    der = hashlib.sha512(text.encode()).digest() + hashlib.sha256(text.encode()).digest()[:8]
    outcome = Signed(text, base64.b64encode(der).decode(), raw={})
    signed = SignedFor(sign, stored.digest, doc, outcome, parse_signed_input(text), "H_24")
    answer = record_signature(conn, config, signed, now=at)
    store.close_journal_unit(conn)
    signature = store.get_signature(conn, answer.body.signature_id)
    if signature is None:
        raise RuntimeError(f"signature {answer.body.signature_id} was not stored")
    return signature


def _layout(config: AgentConfig, doc: store.StoredDocument) -> str:
    """The real layout, for a job that stays in the spool (not printed)."""
    return printable_receipt(config, doc, copy=False).to_json()
