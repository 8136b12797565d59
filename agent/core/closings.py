"""The day's reports: X (any time, changes nothing) and Z (the daily closing, kept and numbered).

X reads one Athens day through its id range (`offline_store.day_book`) on a read-only connection
of its own, in a worker thread, so the till is never held up by it. Z covers everything after the
previous closing: in one transaction it reads the documents and drawer kicks up to the newest,
sums them, keeps the report under the next Z number and journals it with its totals and the
journal head it covers, and queues its slip; a repeated `request_id` gives back the closing it
made (idempotent). Crash-safe order: nothing is written before that single commit, so a crash
leaves either no closing or the whole one with its slip queued. When a reconciliation follows,
the slip is held (`SLIP_WAITS_FOR_RECONCILIATION` at most) so the paper carries the result; a
crash during the wait leaves the slip held, and the next start finishes it (`finish_held`): the
reconciliation if none was kept, then the slip, printed once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict

import offline_store as store
from agent.core.day_report import (
    ZERO,
    DayReport,
    DocumentFacts,
    DrawerCounts,
    OfflineBacklog,
    OpenTables,
    Reconciliation,
    sum_documents,
)
from agent.core.errors import ClosingNotFound, PrinterDisabled
from agent.core.reconcile import ReconcileService
from agent.core.request_identity import Answer
from agent.core.runtime import Runtime
from agent.fiscal.receipt_model import RequestId
from agent.json_codec import dumps, loads
from offline_store.day_book import IdRange

log = logging.getLogger("pos_agent.closings")

# A closing's slip waits this long at most for the reconciliation that follows it (the provider's
# list read page by page under the client's timeouts); after that it prints without the result,
# which stays beside the closing for a reprint.
SLIP_WAITS_FOR_RECONCILIATION = timedelta(minutes=10)


class ClosingRequest(BaseModel):
    """POST /v1/closings: close the day (Z). A repeated `request_id` gives back that closing."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    request_id: RequestId


def build_report(
    conn: sqlite3.Connection,
    *,
    documents: list[store.StoredDocument],
    kicks: list[store.DrawerKick],
    now: datetime,
    day: date | None = None,
) -> DayReport:
    """An X report's body (`kind` X); a closing fills in its Z fields."""
    sums = sum_documents(
        DocumentFacts(
            id=doc.id,
            type_code=doc.type_code,
            series=doc.series,
            number=doc.number,
            state=doc.state.value,
            mark_unknown=doc.mark_unknown,
            last_error=doc.last_error,
            payload=doc.payload,
        )
        for doc in documents
    )
    return DayReport(
        kind="X",
        generated_at=now,
        day=day,
        documents=sums.documents,
        sales=sums.sales,
        refunds=sums.refunds,
        voided_reservations=sums.voided_reservations,
        drawer=DrawerCounts(
            with_sale=sum(1 for k in kicks if k.reason is store.KickReason.CASH_RECEIPT),
            without_sale=sum(1 for k in kicks if k.reason is store.KickReason.MANUAL),
            failed=sum(1 for k in kicks if k.state is store.KickState.FAILED),
        ),
        open_tables=_open_tables(conn),
        backlog=_backlog(conn, now),
        needs_person=sums.needs_person,
    )


def _open_tables(conn: sqlite3.Connection) -> OpenTables:
    orders = store.open_orders(conn)
    return OpenTables(
        tables=len({order.table_id for order in orders}),
        order_slips=len(orders),
        balance=sum((order.total_amount for order in orders), ZERO),
    )


def _backlog(conn: sqlite3.Connection, now: datetime) -> OfflineBacklog:
    summary = store.backlog_summary(conn, now)
    oldest = summary.oldest_delayed
    return OfflineBacklog(
        documents=summary.by_state.get("delayed", 0) + summary.by_state.get("pending", 0),
        oldest_issued_at=oldest.issued_at if oldest else None,
        deadline=oldest.due_at if oldest else None,
    )


def day_report(conn: sqlite3.Connection, day: date, now: datetime) -> DayReport:
    """The X report of one Athens day, read through the day's id ranges."""
    documents = store.day_range(conn, day, "documents")
    kicks = store.day_range(conn, day, "drawer_kicks")
    return build_report(
        conn,
        documents=store.documents_between(conn, documents, day) if documents else [],
        kicks=store.kicks_between(conn, kicks, day) if kicks else [],
        now=now,
        day=day,
    )


def closing_report(closing: store.Closing) -> DayReport:
    """A kept Z report as it was made, with the reconciliation that followed it, if any."""
    report = DayReport.model_validate(loads(closing.report))
    if closing.reconciliation is None:
        return report
    result = Reconciliation.model_validate(loads(closing.reconciliation))
    return report.model_copy(update={"reconciliation": result})


class ClosingService:
    def __init__(self, runtime: Runtime, reconcile: ReconcileService | None = None) -> None:
        """`reconcile`: matches each closed day with the provider's list (None: never)."""
        self.rt = runtime
        self.reconcile = reconcile
        self._finishing: set[int] = set()  # closings whose reconciliation runs now

    async def day(self, day: date) -> DayReport:
        """X: on a read-only connection in a worker thread (WAL reads beside the writer)."""
        now = self.rt.clock()
        return await asyncio.to_thread(self._read_day, day, now)

    async def print_day(self, day: date) -> DayReport:
        """X on the receipt printer: the report is handed to the printer worker, which lays it
        out as the Z slip is laid out, titled X. Nothing is written: no closing, no counter,
        no print job row; the hand-off lives in the worker's memory, so a restart before the
        paper comes out drops it, and it is made again by asking again (X is read afresh from
        the day's documents every time)."""
        if not self.rt.config.printer.enabled:
            raise PrinterDisabled("printing is off on this register (printer.enabled = false)")
        report = await self.day(day)
        slip = dumps(report.model_dump(mode="json")).decode()
        self.rt.printer.print_slip(slip)
        return report

    def _read_day(self, day: date, now: datetime) -> DayReport:
        conn = store.open_database(self.rt.config.database_path, read_only=True)
        try:
            return day_report(conn, day, now)
        finally:
            conn.close()

    async def close(self, request: ClosingRequest) -> Answer[DayReport]:
        """Z: everything after the previous closing, kept under the next number with its slip
        queued, journaled; then (`closing.reconcile_after`) each day it covers is matched with
        the provider's list and the result kept beside it, and only then is the slip released
        to the printer, so the paper carries the result. A crash in between leaves the slip
        held; the next start finishes it (`finish_held`), and so does a repeat of the request
        (the first one failed after its commit: a busy or full storage while reconciling)."""
        reconcile = self.rt.config.closing.reconcile_after and self.reconcile is not None
        closing, created = self._record(request, hold_slip=reconcile)
        if (created and reconcile) or self._unfinished(closing.number):
            await self._finish(closing.number)
        elif created:
            self.rt.notify_printer()
        return Answer(closing_report(self._closing(closing.number)), created)

    async def finish_held(self) -> None:
        """On start: each closing whose slip a crash left waiting for its reconciliation gets
        the reconciliation (when none was kept) and then its slip, once."""
        for number in store.held_closing_prints(self.rt.conn):
            if number not in self._finishing:
                log.info("closing Z %s: finishing what a stop cut short (its slip)", number)
                await self._finish(number)

    def _unfinished(self, number: int) -> bool:
        """Its slip still held for a reconciliation that no call is running."""
        return number not in self._finishing and number in store.held_closing_prints(self.rt.conn)

    async def _finish(self, number: int) -> None:
        """Reconcile the closing's days (unless a result is kept), then release its slip."""
        self._finishing.add(number)
        try:
            closing = self._closing(number)
            if closing.reconciliation is None and self.reconcile is not None:
                for day in _days(self.rt.conn, closing.documents):
                    await self.reconcile.run(day, closing=number)
        finally:
            self._finishing.discard(number)
        with store.transaction(self.rt.conn):
            released = store.release_closing_print(self.rt.conn, number, now=self.rt.clock())
        if released:
            self.rt.notify_printer()

    def _record(self, request: ClosingRequest, *, hold_slip: bool) -> tuple[store.Closing, bool]:
        """The closing of this request_id (made before: not created), or a new one with its
        slip queued (held for the reconciliation when `hold_slip`)."""
        conn = self.rt.conn
        with store.transaction(conn):
            done = store.closing_by_request(conn, request.request_id)
            if done is not None:
                return done, False
            previous = store.last_closing(conn)
            newest_document, newest_kick = store.newest_ids(conn)
            documents = IdRange(previous.documents.last if previous else 0, newest_document)
            kicks = IdRange(previous.kicks.last if previous else 0, newest_kick)
            now = self.rt.clock()
            body = build_report(
                conn,
                documents=store.documents_between(conn, documents),
                kicks=store.kicks_between(conn, kicks),
                now=now,
            )
            report = body.model_copy(
                update={
                    "kind": "Z",
                    "day": now.date(),
                    "number": previous.number + 1 if previous else 1,
                    "after_receipt_id": documents.after,
                    "last_receipt_id": documents.last,
                    "journal_seq": store.journal_last_seq(conn),
                }
            )
            closing = store.record_closing(
                conn,
                request_id=request.request_id,
                documents=documents,
                kicks=kicks,
                report=dumps(report.model_dump(mode="json")).decode(),
                totals=_totals(report),
                print_slip=self.rt.config.printer.enabled,
                now=now,
                print_not_before=now + SLIP_WAITS_FOR_RECONCILIATION if hold_slip else None,
            )
        return closing, True

    async def auto_close(self) -> Answer[DayReport] | None:
        """`closing.auto_at`: once it is that time of the day, the day's closing, made once (its
        request_id names the day) and only when something was issued since the last one."""
        at = self.rt.config.closing.auto_time()
        now = self.rt.clock()
        if at is None or now.time() < at:
            return None
        request = ClosingRequest(request_id=f"auto-{now.date().isoformat()}")
        conn = self.rt.conn
        if store.closing_by_request(conn, request.request_id) is None:
            previous = store.last_closing(conn)
            covered = (previous.documents.last, previous.kicks.last) if previous else (0, 0)
            if store.newest_ids(conn) == covered:
                return None
        return await self.close(request)

    def get(self, number: int) -> DayReport:
        return closing_report(self._closing(number))

    def reprint(self, number: int) -> DayReport:
        """Its slip again on the receipt printer (journaled); the report is the one kept."""
        closing = self._closing(number)
        if not self.rt.config.printer.enabled:
            raise PrinterDisabled("printing is off on this register (printer.enabled = false)")
        with store.transaction(self.rt.conn):
            store.queue_closing_print(self.rt.conn, number, now=self.rt.clock())
        self.rt.notify_printer()
        return closing_report(closing)

    def _closing(self, number: int) -> store.Closing:
        closing = store.get_closing(self.rt.conn, number)
        if closing is None:
            raise ClosingNotFound(f"there is no closing (Z) number {number} on this register")
        return closing


def _days(conn: sqlite3.Connection, ids: IdRange) -> list[date]:
    """The Athens days a closing's documents were issued on (usually one or two)."""
    if ids.last <= ids.after:
        return []
    ends = [store.get_document(conn, ids.after + 1), store.get_document(conn, ids.last)]
    found = [doc.issued_at.date() for doc in ends if doc is not None]
    if not found:
        return []
    start, end = min(found), max(found)
    return [date.fromordinal(n) for n in range(start.toordinal(), end.toordinal() + 1)]


def _totals(report: DayReport) -> dict[str, object]:
    """What the journal entry of a closing carries: gross, VAT and money per method."""
    return {
        flow: {
            "gross": str(part.gross),
            "vat": str(part.vat),
            "methods": {str(line.method): str(line.amount + line.tips) for line in part.by_method},
        }
        for flow, part in (("sales", report.sales), ("refunds", report.refunds))
    }
