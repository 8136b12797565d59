"""The printer worker: drains the durable print spool on one thread, never touching fiscal state.

python-escpos blocks, so one dedicated thread owns the printer and its own SQLite connection. A
job is claimed (`printing`), the printer's status is read where the transport can answer, and the
rendered bytes are sent in one write. Paper out, cover open, an offline or unreachable printer
put the job back in the queue with exponential backoff (capped); the document itself is never
re-issued. `run_once(now)` is the whole step, so tests drive it with their own clock.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from escpos.escpos import Escpos

import offline_store as store
from printers.blocks import Layout, LayoutError
from printers.connections import (
    PrinterSettings,
    PrinterUnavailable,
    close_connection,
    open_connection,
    write_raw,
)
from printers.escpos_render import render_escpos
from printers.layout import build_layout
from printers.payment_qr import PaymentQrSlip, payment_qr_layout
from printers.png_render import write_png
from printers.receipt import PrintableReceipt, ReceiptFormatError
from printers.status import PrinterState, printer_status

log = logging.getLogger("pos_agent.print_spool")

Result = Literal["printed", "retry", "failed"]


@dataclass(frozen=True)
class PrintOutcome:
    job_id: int
    result: Result
    reason: str = ""
    printer_state: PrinterState = PrinterState.UNKNOWN
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class KickOutcome:
    kick_id: int
    opened: bool
    reason: str = ""


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt n+1: base · 2^n, capped so a refilled printer resumes quickly."""

    base_s: float = 1.0
    max_s: float = 30.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.max_s, self.base_s * 2 ** min(attempts, 32)))


class PrintSpool:
    """Receipts first (by job), then IRIS QR slips, then daily closing slips (by number), then
    the X slips asked for (in memory only: an X changes nothing and is asked for again)."""

    def __init__(
        self,
        database_path: Path,
        settings: PrinterSettings,
        *,
        clock: Callable[[], datetime],
        connect: Callable[[PrinterSettings], Escpos] = open_connection,
        backoff: Backoff = Backoff(),
        preview_dir: Path | None = None,
        poll_s: float = 1.0,
        on_storage_fault: Callable[[store.StorageFault, str], None] | None = None,
        closing_layout: Callable[[str, int], Layout] | None = None,
        issuer: str = "",
    ) -> None:
        """`closing_layout`: a kept closing's report (JSON) as the slip for a paper width;
        `issuer`: the shop's name on an IRIS QR slip."""
        self._database_path = database_path
        self._settings = settings
        self._clock = clock
        self._connect = connect
        self._backoff = backoff
        self._preview_dir = preview_dir
        self._poll_s = poll_s
        self._on_storage_fault = on_storage_fault
        self._closing_layout = closing_layout
        self._issuer = issuer
        self._recovered = False
        self._x_slips: deque[tuple[str, int, datetime | None]] = deque()
        self._conn: sqlite3.Connection | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_state = PrinterState.UNKNOWN

    def start(self) -> None:
        """Start the worker thread; it first requeues jobs a crash left in `printing`."""
        if self._thread is not None:
            raise RuntimeError("print spool already started")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="print-spool", daemon=True)
        self._thread.start()

    def print_slip(self, report_json: str) -> None:
        """Print an X report (its JSON) after what is queued; kept in memory only."""
        self._x_slips.append((report_json, 0, None))
        self._wake.set()

    def notify(self) -> None:
        """A job was enqueued (or a reprint asked for): look at the queue now."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the job in hand, then join the thread and close its connection."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def state(self) -> str:
        """The printer's state as last read (paper out, offline, ...), for `status`."""
        return self.last_state.value

    def recover(self, now: datetime) -> int:
        """Jobs left in `printing` by a crash go back to the queue, as copies: the original may
        have reached the paper before the crash."""
        conn = self._connection()
        with store.transaction(conn):
            return store.requeue_interrupted(conn, now=now)

    def kick_once(self, now: datetime) -> KickOutcome | None:
        """Send the next queued drawer pulse (before any print job: the cashier is waiting at
        the open till). Tried once: a failure is recorded for `status`, never retried, and
        never touches the sale."""
        conn = self._connection()
        kick = store.next_kick(conn)
        if kick is None:
            return None
        error = self._send_kick()
        with store.transaction(conn):
            store.finish_kick(conn, kick.id, error=error, now=now)
        if error is None:
            log.info("cash drawer opened (kick %s, %s by %s)", kick.id, kick.reason, kick.caller)
            return KickOutcome(kick.id, True)
        log.warning("cash drawer kick %s failed: %s", kick.id, error)
        return KickOutcome(kick.id, False, error)

    def _send_kick(self) -> str | None:
        pulse = self._settings.drawer
        if pulse is None:
            return 'no cash drawer configured (printer.cash_drawer = "none")'
        try:
            printer = self._connect(self._settings)
        except PrinterUnavailable as error:
            self.last_state = PrinterState.OFFLINE
            return error.reason
        try:
            write_raw(printer, pulse.escpos())
        except PrinterUnavailable as error:
            return error.reason
        finally:
            close_connection(printer)
        return None

    def run_once(self, now: datetime) -> PrintOutcome | None:
        """Take the next due job and print it, or reschedule it; None when nothing is due."""
        conn = self._connection()
        with store.transaction(conn):
            job = store.next_print_job(conn, now)
            if job is None:
                return None
            store.mark_printing(conn, job.id, now=now)
            layout_json = store.print_layout(conn, job.id)
        if layout_json is None:
            return self._fail(conn, job.id, "unprintable: the job has no layout", now)
        try:
            receipt = PrintableReceipt.from_json(layout_json)
            if job.copy and not receipt.copy:
                receipt = replace(receipt, copy=True)
            layout = build_layout(receipt, self._settings.width)
            data = render_escpos(layout, self._settings.profile)
        except (ReceiptFormatError, LayoutError, ValueError) as error:
            return self._fail(conn, job.id, f"unprintable: {error}", now)
        state, refused = self._write(data)
        if refused is not None:
            return self._retry(conn, job, refused, state, now)
        with store.transaction(conn):
            store.mark_printed(conn, job.id, now=now)
        log.info("printed job %s (document %s, copy=%s)", job.id, job.document_id, job.copy)
        self._preview(layout, job.document_id, job.id)
        return PrintOutcome(job.id, "printed", printer_state=state)

    def _write(self, data: bytes) -> tuple[PrinterState, str | None]:
        """Send the bytes in one write: the printer's state, and why it did not print (None
        when it did)."""
        try:
            printer = self._connect(self._settings)
        except PrinterUnavailable as error:
            self.last_state = PrinterState.OFFLINE
            return PrinterState.OFFLINE, error.reason
        try:
            state = printer_status(printer)
            self.last_state = state
            if state.blocks_printing:
                return state, f"printer {state.value}"
            write_raw(printer, data)
        except PrinterUnavailable as error:
            self.last_state = PrinterState.OFFLINE
            return PrinterState.OFFLINE, error.reason
        finally:
            close_connection(printer)
        return state, None

    def closing_once(self, now: datetime) -> PrintOutcome | None:
        """Print the next daily closing (Z) slip waiting, or reschedule it; after the receipts,
        which the customers wait for. None when none is due."""
        if self._closing_layout is None:
            return None
        conn = self._connection()
        closing = store.next_closing_print(conn, now)
        if closing is None:
            return None
        refused: str | None
        try:
            layout = self._closing_layout(closing.report, self._settings.width)
            data = render_escpos(layout, self._settings.profile)
        except (LayoutError, ValueError) as error:
            state, refused = PrinterState.UNKNOWN, f"unprintable: {error}"
        else:
            state, refused = self._write(data)
        retry_at = None
        if refused is not None:
            retry_at = now + self._backoff.delay(closing.print_attempts)
            log.warning("closing %s waits for the printer: %s", closing.number, refused)
        with store.transaction(conn):
            store.closing_print_done(
                conn, closing.number, error=refused, next_attempt_at=retry_at, now=now
            )
        if refused is not None:
            return PrintOutcome(0, "retry", refused, state, retry_at)
        self._preview(layout, 0, closing.number, name=f"closing-{closing.number}.png")
        return PrintOutcome(0, "printed", printer_state=state)

    def x_once(self, now: datetime) -> PrintOutcome | None:
        """Print the oldest X slip asked for, through the Z slip's layout, or keep it for a
        later attempt (backoff); None when none is due. Only this thread takes from the deque."""
        if self._closing_layout is None or not self._x_slips:
            return None
        report_json, attempts, due = self._x_slips[0]
        if due is not None and due > now:
            return None
        try:
            layout = self._closing_layout(report_json, self._settings.width)
            data = render_escpos(layout, self._settings.profile)
        except (LayoutError, ValueError) as error:
            self._x_slips.popleft()
            log.error("X slip dropped, unprintable: %s", error)
            return PrintOutcome(0, "failed", f"unprintable: {error}")
        state, refused = self._write(data)
        if refused is not None:
            retry_at = now + self._backoff.delay(attempts)
            self._x_slips[0] = (report_json, attempts + 1, retry_at)
            log.warning("X slip waits for the printer: %s", refused)
            return PrintOutcome(0, "retry", refused, state, retry_at)
        self._x_slips.popleft()
        log.info("printed an X report slip")
        self._preview(layout, 0, 0, name="x-report.png")
        return PrintOutcome(0, "printed", printer_state=state)

    def iris_once(self, now: datetime) -> PrintOutcome | None:
        """Print the next IRIS QR the till asked for, or reschedule it; None when none waits."""
        conn = self._connection()
        payment = store.next_iris_print(conn, now)
        if payment is None:
            return None
        doc = store.get_document(conn, payment.document_id)
        refused: str | None
        try:
            slip = PaymentQrSlip(
                issuer=self._issuer,
                series=doc.series if doc else "",
                number=doc.number if doc else 0,
                amount=payment.amount,
                qr=payment.qr,
                valid_until=payment.valid_until,
            )
            layout = payment_qr_layout(slip, self._settings.width)
            data = render_escpos(layout, self._settings.profile)
        except (LayoutError, ValueError) as error:
            state, refused = PrinterState.UNKNOWN, f"unprintable: {error}"
        else:
            state, refused = self._write(data)
        retry_at = None if refused is None else now + self._backoff.delay(payment.print_attempts)
        with store.transaction(conn):
            store.iris_print_done(
                conn, payment.id, error=refused, next_attempt_at=retry_at, now=now
            )
        if refused is not None:
            log.warning("IRIS QR %s waits for the printer: %s", payment.id, refused)
            return PrintOutcome(0, "retry", refused, state, retry_at)
        return PrintOutcome(0, "printed", printer_state=state)

    def _retry(
        self,
        conn: sqlite3.Connection,
        job: store.PrintJob,
        reason: str,
        state: PrinterState,
        now: datetime,
    ) -> PrintOutcome:
        self.last_state = state
        next_attempt_at = now + self._backoff.delay(job.attempts)
        with store.transaction(conn):
            store.retry_print(conn, job.id, reason=reason, next_attempt_at=next_attempt_at, now=now)
        log.warning("print job %s waits until %s: %s", job.id, next_attempt_at, reason)
        return PrintOutcome(job.id, "retry", reason, state, next_attempt_at)

    def _fail(
        self, conn: sqlite3.Connection, job_id: int, reason: str, now: datetime
    ) -> PrintOutcome:
        with store.transaction(conn):
            store.fail_print(conn, job_id, reason=reason, now=now)
        log.error("print job %s failed: %s", job_id, reason)
        return PrintOutcome(job_id, "failed", reason)

    def _preview(
        self, layout: Layout, document_id: int, job_id: int, *, name: str | None = None
    ) -> None:
        """A PNG of what was printed, for support; losing it never affects the job."""
        if self._preview_dir is None:
            return
        try:
            write_png(
                layout, self._preview_dir / (name or f"receipt-{document_id}-job-{job_id}.png")
            )
        except OSError as error:
            log.warning("preview for job %s not written: %s", job_id, error)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = store.open_database(self._database_path, check=False)
        return self._conn

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                outcome = self._step()
                if outcome is None or outcome.result != "printed":
                    self._wake.wait(self._poll_s)
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _step(self) -> PrintOutcome | None:
        """One job. The first step requeues what a crash left in `printing`. A write the
        storage refuses (full disk, read-only, lock, I/O error) is reported to the daemon's
        storage health (status, metrics) and tried again next poll; the thread never dies
        of it, so printing resumes by itself once the storage is back."""
        try:
            if not self._recovered:
                self.recover(self._clock())
                self._recovered = True
            while self.kick_once(self._clock()) is not None:
                pass
            return (
                self.run_once(self._clock())
                or self.iris_once(self._clock())
                or self.closing_once(self._clock())
                or self.x_once(self._clock())
            )
        except (store.StoreError, sqlite3.Error) as exc:
            fault = store.storage_fault(exc)
            if fault is None:
                log.exception("print spool step failed; retrying")
            elif self._on_storage_fault is not None:
                self._on_storage_fault(fault, str(exc)[:200])
            else:
                log.warning("print spool: the storage refused a write (%s): %s", fault.value, exc)
            return None
