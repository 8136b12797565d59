"""The durable print spool against a TCP printer emulator and scripted printers."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from escpos.printer import Dummy

import offline_store as store
from agent.core.closings import day_report
from agent.core.day_slip import closing_layout
from agent.daemon.print_spool import Backoff, PrintSpool
from agent.json_codec import dumps
from printers.connections import PrinterSettings, PrinterUnavailable
from printers.escpos_render import render_escpos
from printers.layout import build_layout
from printers.profile import PrinterProfile
from printers.samples import sample_card_receipt, sample_cash_receipt
from printers.status import PrinterState
from tests.offline_store.factory import T0, issue, open_store
from tests.printers.emulator import PrinterEmulator

PROFILE = PrinterProfile("cp1253", native_qr=True)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    conn = open_store(tmp_path)
    yield tmp_path / "store.db", conn
    conn.close()


@pytest.fixture
def emulator() -> Iterator[PrinterEmulator]:
    with PrinterEmulator() as printer:
        yield printer


def _enqueue(conn: sqlite3.Connection, receipt_json: str, *, copy: bool = False) -> int:
    document = issue(conn, f"req-{time.monotonic_ns()}")
    with store.transaction(conn):
        return store.enqueue_print(conn, document.id, receipt_json, copy=copy, now=T0)


def _job(conn: sqlite3.Connection, job_id: int) -> store.PrintJob:
    jobs = [job for job in _all_jobs(conn) if job.id == job_id]
    return jobs[0]


def _all_jobs(conn: sqlite3.Connection) -> list[store.PrintJob]:
    ids = [row[0] for row in conn.execute("SELECT DISTINCT document_id FROM print_jobs")]
    return [job for document_id in ids for job in store.print_jobs_for(conn, document_id)]


def _network(emulator: PrinterEmulator) -> PrinterSettings:
    return PrinterSettings(
        backend="network", host=emulator.host, port=emulator.port, timeout_s=2, profile=PROFILE
    )


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


class _WakeEvent(threading.Event):
    """The worker's wake-up event, which also tells the test that the worker has gone idle."""

    def __init__(self) -> None:
        super().__init__()
        self.idle = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.idle.set()
        return super().wait(timeout)


def test_paper_out_keeps_the_job_queued_then_prints_exactly_once(
    database: tuple[Path, sqlite3.Connection], emulator: PrinterEmulator
) -> None:
    path, conn = database
    receipt = sample_cash_receipt()
    job_id = _enqueue(conn, receipt.to_json())
    spool = PrintSpool(path, _network(emulator), clock=lambda: T0, backoff=Backoff(1, 30))
    emulator.paper_out = True

    first = spool.run_once(T0)
    assert first is not None and first.result == "retry"
    assert first.printer_state is PrinterState.PAPER_OUT
    assert first.next_attempt_at == T0 + timedelta(seconds=1)
    job = _job(conn, job_id)
    assert job.state == "queued" and job.attempts == 1 and job.last_error == "printer paper_out"
    assert spool.run_once(T0) is None, "not due before the backoff"
    second = spool.run_once(T0 + timedelta(seconds=1))
    assert second is not None and second.result == "retry"
    assert second.next_attempt_at == T0 + timedelta(seconds=3)
    _wait_for(lambda: emulator.connections == 2)
    assert emulator.printed == b"", "nothing may reach the head while paper is out"

    emulator.paper_out = False
    done = spool.run_once(T0 + timedelta(seconds=3))
    assert done is not None and done.result == "printed"
    assert spool.run_once(T0 + timedelta(minutes=5)) is None
    expected = render_escpos(build_layout(receipt, 48), PROFILE)
    _wait_for(lambda: emulator.printed == expected)
    assert emulator.printed.count(b"\x1b@") == 1, "exactly one receipt reached the printer"
    assert _job(conn, job_id).state == "printed"
    assert emulator.queries.count(1) == 3  # status read before every attempt


def test_cover_open_and_unreachable_printer_wait_with_capped_backoff(
    database: tuple[Path, sqlite3.Connection], emulator: PrinterEmulator
) -> None:
    path, conn = database
    job_id = _enqueue(conn, sample_cash_receipt().to_json())
    spool = PrintSpool(path, _network(emulator), clock=lambda: T0, backoff=Backoff(1, 4))
    emulator.cover_open = True
    outcome = spool.run_once(T0)
    assert outcome is not None and outcome.printer_state is PrinterState.COVER_OPEN

    unreachable = replace(_network(emulator), port=_free_port())
    spool = PrintSpool(path, unreachable, clock=lambda: T0, backoff=Backoff(1, 4))
    now = T0
    delays = []
    for _ in range(4):
        now += timedelta(seconds=10)
        outcome = spool.run_once(now)
        assert outcome is not None and outcome.result == "retry"
        assert outcome.next_attempt_at is not None
        delays.append((outcome.next_attempt_at - now).total_seconds())
    assert delays == [2, 4, 4, 4]
    job = _job(conn, job_id)
    assert job.state == "queued" and job.attempts == 5
    assert job.last_error is not None and job.last_error.startswith("network:")


def test_copy_job_prints_the_copy_banner(database: tuple[Path, sqlite3.Connection]) -> None:
    path, conn = database
    _enqueue(conn, sample_card_receipt().to_json(), copy=True)
    dummy = Dummy()
    spool = PrintSpool(
        path, PrinterSettings(profile=PROFILE), clock=lambda: T0, connect=lambda _: dummy
    )
    outcome = spool.run_once(T0)
    assert outcome is not None and outcome.result == "printed"
    assert outcome.printer_state is PrinterState.UNKNOWN, "a dummy cannot be read: never 'ok'"
    assert "ΑΝΤΙΓΡΑΦΟ".encode("cp1253") in dummy.output


def test_unprintable_job_fails_with_reason(database: tuple[Path, sqlite3.Connection]) -> None:
    path, conn = database
    job_id = _enqueue(conn, '{"not": "a receipt"}')
    spool = PrintSpool(path, PrinterSettings(), clock=lambda: T0)
    outcome = spool.run_once(T0)
    assert outcome is not None and outcome.result == "failed"
    job = _job(conn, job_id)
    assert job.state == "failed" and job.last_error is not None
    assert job.last_error.startswith("unprintable")


def test_write_error_requeues(database: tuple[Path, sqlite3.Connection]) -> None:
    path, conn = database
    job_id = _enqueue(conn, sample_cash_receipt().to_json())

    class BrokenPipe(Dummy):
        def _raw(self, msg: bytes) -> None:
            raise BrokenPipeError("printer went away")

    spool = PrintSpool(path, PrinterSettings(), clock=lambda: T0, connect=lambda _: BrokenPipe())
    outcome = spool.run_once(T0)
    assert outcome is not None and outcome.result == "retry"
    assert _job(conn, job_id).last_error == "write failed: printer went away"


def test_preview_written_per_printed_job(
    database: tuple[Path, sqlite3.Connection], tmp_path: Path
) -> None:
    path, conn = database
    job_id = _enqueue(conn, sample_cash_receipt().to_json())
    previews = tmp_path / "previews"
    spool = PrintSpool(path, PrinterSettings(), clock=lambda: T0, preview_dir=previews)
    assert spool.run_once(T0) is not None
    (preview,) = previews.glob(f"receipt-*-job-{job_id}.png")
    assert preview.read_bytes().startswith(b"\x89PNG")


def test_worker_thread_wakes_on_notify_and_stops_cleanly(
    database: tuple[Path, sqlite3.Connection], emulator: PrinterEmulator
) -> None:
    path, conn = database
    # With an hour between polls, only notify() can make the job print within the wait.
    spool = PrintSpool(path, _network(emulator), clock=lambda: T0, poll_s=3600)
    spool._wake = wake = _WakeEvent()
    spool.start()
    try:
        assert wake.idle.wait(5), "the worker never went idle on the empty queue"
        _enqueue(conn, sample_cash_receipt().to_json())
        spool.notify()
        expected = render_escpos(build_layout(sample_cash_receipt(), 48), PROFILE)
        _wait_for(lambda: emulator.printed == expected)
    finally:
        spool.stop()
    assert [job.state for job in _all_jobs(conn)] == ["printed"]


def test_interrupted_job_is_requeued_on_start(database: tuple[Path, sqlite3.Connection]) -> None:
    path, conn = database
    job_id = _enqueue(conn, sample_cash_receipt().to_json())
    with store.transaction(conn):
        store.mark_printing(conn, job_id, now=T0)
    spool = PrintSpool(path, PrinterSettings(), clock=lambda: T0)
    assert spool.recover(T0) == 1
    assert _job(conn, job_id).state == "queued"


def test_connect_failure_is_printer_unavailable() -> None:
    from printers.connections import open_connection

    with pytest.raises(PrinterUnavailable) as raised:
        open_connection(PrinterSettings(backend="network", host="127.0.0.1", port=_free_port()))
    assert raised.value.reason.startswith("network:")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_closing_slip_waits_for_paper_then_prints_once_with_its_preview(
    database: tuple[Path, sqlite3.Connection], emulator: PrinterEmulator, tmp_path: Path
) -> None:
    path, conn = database
    issue(conn, "sold")
    report = day_report(conn, T0.date(), T0).model_copy(update={"kind": "Z", "number": 1})
    with store.transaction(conn):
        store.record_closing(
            conn,
            request_id="z-1",
            documents=store.IdRange(0, 1),
            kicks=store.IdRange(0, 0),
            report=dumps(report.model_dump(mode="json")).decode(),
            totals={},
            print_slip=True,
            now=T0,
        )
    spool = PrintSpool(
        path,
        _network(emulator),
        clock=lambda: T0,
        backoff=Backoff(1, 30),
        preview_dir=tmp_path / "previews",
        closing_layout=lambda text, width: closing_layout(text, "Ωραία Ελλάς", width),
    )
    emulator.paper_out = True
    waiting = spool.closing_once(T0)
    assert waiting is not None and waiting.result == "retry"
    assert store.get_closing(conn, 1).print_error == "printer paper_out"
    assert spool.closing_once(T0) is None, "not due before the backoff"
    emulator.paper_out = False
    done = spool.closing_once(T0 + timedelta(seconds=1))
    assert done is not None and done.result == "printed"
    _wait_for(lambda: "ΑΝΑΦΟΡΑ Z".encode("cp1253") in emulator.printed)
    assert store.get_closing(conn, 1).print_state == "printed"
    assert spool.closing_once(T0 + timedelta(minutes=5)) is None
    assert (tmp_path / "previews" / "closing-1.png").exists()
    events = [r[0] for r in conn.execute("SELECT event FROM journal WHERE event LIKE 'closing.%'")]
    assert events == ["closing.z", "closing.print_retry", "closing.printed"]


def test_a_held_closing_slip_prints_when_its_wait_runs_out_and_a_late_release_is_nothing(
    database: tuple[Path, sqlite3.Connection], emulator: PrinterEmulator, tmp_path: Path
) -> None:
    """The slip is queued with the closing, held for its reconciliation: not printed while held,
    printed once the hold runs out; the reconciliation finishing after that queues nothing."""
    path, conn = database
    issue(conn, "sold")
    report = day_report(conn, T0.date(), T0).model_copy(update={"kind": "Z", "number": 1})
    with store.transaction(conn):
        store.record_closing(
            conn,
            request_id="z-held",
            documents=store.IdRange(0, 1),
            kicks=store.IdRange(0, 0),
            report=dumps(report.model_dump(mode="json")).decode(),
            totals={},
            print_slip=True,
            now=T0,
            print_not_before=T0 + timedelta(minutes=10),
        )
    assert store.held_closing_prints(conn) == [1]
    spool = PrintSpool(
        path,
        _network(emulator),
        clock=lambda: T0,
        backoff=Backoff(1, 30),
        closing_layout=lambda text, width: closing_layout(text, "Ωραία Ελλάς", width),
    )
    assert spool.closing_once(T0 + timedelta(minutes=9)) is None, "held for the reconciliation"
    done = spool.closing_once(T0 + timedelta(minutes=10))
    assert done is not None and done.result == "printed"
    assert store.held_closing_prints(conn) == []
    with store.transaction(conn):
        assert not store.release_closing_print(conn, 1, now=T0 + timedelta(minutes=11))
    assert spool.closing_once(T0 + timedelta(minutes=12)) is None
    events = [r[0] for r in conn.execute("SELECT event FROM journal WHERE event LIKE 'closing.%'")]
    assert events == ["closing.z", "closing.printed"]


def test_an_x_slip_waits_for_paper_then_prints_once_and_keeps_nothing(
    database: tuple[Path, sqlite3.Connection], emulator: PrinterEmulator, tmp_path: Path
) -> None:
    path, conn = database
    issue(conn, "sold")
    report = day_report(conn, T0.date(), T0)
    report_json = dumps(report.model_dump(mode="json")).decode()
    spool = PrintSpool(
        path,
        _network(emulator),
        clock=lambda: T0,
        backoff=Backoff(1, 30),
        preview_dir=tmp_path / "previews",
        closing_layout=lambda text, width: closing_layout(text, "Ωραία Ελλάς", width),
    )
    journal_before = conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
    spool.print_slip(report_json)
    emulator.paper_out = True
    waiting = spool.x_once(T0)
    assert waiting is not None and waiting.result == "retry"
    assert spool.x_once(T0) is None, "not due before the backoff"
    emulator.paper_out = False
    done = spool.x_once(T0 + timedelta(seconds=1))
    assert done is not None and done.result == "printed"
    assert spool.x_once(T0 + timedelta(minutes=5)) is None, "printed once"
    expected = render_escpos(closing_layout(report_json, "Ωραία Ελλάς", 48), PROFILE)
    _wait_for(lambda: emulator.printed == expected)
    for text in ("ΑΝΑΦΟΡΑ X", "Ενημερωτική, όχι κλείσιμο", "Ωραία Ελλάς", "ΠΩΛΗΣΕΙΣ"):
        assert text.encode("cp1253") in emulator.printed, text
    assert "ΑΝΑΦΟΡΑ Z".encode("cp1253") not in emulator.printed
    assert (tmp_path / "previews" / "x-report.png").exists()
    assert conn.execute("SELECT COUNT(*) FROM closings").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM print_jobs").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == journal_before
