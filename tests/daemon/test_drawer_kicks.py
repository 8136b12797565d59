"""Cash drawer kicks through the printer worker: ESC p reaches the printer before waiting print
jobs; an unreachable printer fails the kick once (never retried: a drawer that springs open
later is worse) and `status` reports it as a printer finding."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import offline_store as store
from agent.core.status_report import drawer_findings, drawer_section
from agent.daemon.print_spool import PrintSpool
from printers.connections import PrinterSettings
from printers.drawer import DrawerPulse
from printers.profile import PrinterProfile
from printers.samples import sample_cash_receipt
from tests.daemon.test_print_spool import _enqueue, _free_port, _network, _wait_for
from tests.offline_store.factory import T0, open_store
from tests.printers.emulator import PrinterEmulator

PULSE = DrawerPulse(5, on_ms=120, off_ms=240)
KICK = b"\x1bp\x01\x3c\x78"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    conn = open_store(tmp_path)
    yield tmp_path / "store.db", conn
    conn.close()


def _kick(conn: sqlite3.Connection) -> store.DrawerKick:
    with store.transaction(conn):
        return store.enqueue_kick(conn, reason=store.KickReason.MANUAL, caller="uid=0", now=T0)


def test_the_kick_goes_out_before_the_waiting_receipt(
    database: tuple[Path, sqlite3.Connection],
) -> None:
    path, conn = database
    with PrinterEmulator() as emulator:
        settings = replace(_network(emulator), drawer=PULSE)
        _enqueue(conn, sample_cash_receipt().to_json())
        kick = _kick(conn)
        spool = PrintSpool(path, settings, clock=lambda: T0)
        outcome = spool.kick_once(T0)
        assert outcome is not None and outcome.opened and outcome.kick_id == kick.id
        assert spool.kick_once(T0) is None
        printed = spool.run_once(T0)
        assert printed is not None and printed.result == "printed"
        _wait_for(lambda: emulator.printed.count(b"\x1b@") == 1)
        assert emulator.printed.startswith(KICK)
    opened = store.get_kick(conn, kick.id)
    assert opened is not None and opened.state is store.KickState.OPENED


def test_a_failed_kick_is_recorded_once_and_is_a_printer_finding(
    database: tuple[Path, sqlite3.Connection],
) -> None:
    path, conn = database
    unreachable = replace(_unreachable(), drawer=PULSE)
    kick = _kick(conn)
    spool = PrintSpool(path, unreachable, clock=lambda: T0)
    outcome = spool.kick_once(T0)
    assert outcome is not None and not outcome.opened and outcome.reason
    assert spool.kick_once(T0) is None, "a failed kick is never retried"
    stored = store.get_kick(conn, kick.id)
    assert stored is not None and stored.state is store.KickState.FAILED
    findings = drawer_findings(drawer_section(conn))
    assert len(findings) == 1 and findings[0][1].startswith("printer: 1 cash drawer kick(s) failed")


def test_without_a_configured_drawer_the_kick_fails_with_the_reason(
    database: tuple[Path, sqlite3.Connection],
) -> None:
    path, conn = database
    _kick(conn)
    spool = PrintSpool(path, _unreachable(), clock=lambda: T0)
    outcome = spool.kick_once(T0)
    assert outcome is not None and "cash_drawer" in outcome.reason


def _unreachable() -> PrinterSettings:
    return PrinterSettings(
        backend="network",
        host="127.0.0.1",
        port=_free_port(),
        timeout_s=1,
        profile=PrinterProfile("cp1253"),
    )
