"""Power cuts on the FUSE layer (`agent/tools/powercut_fs.py`): what the cuts found, each cut at
the exact call that showed it, and a short `pos-agent powercut` run (CI smoke).

Needs root, /dev/fuse and libfuse 3 (Debian's fuse3; the Makefile installs it): skipped with the
reason otherwise."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

import offline_store as store
from agent.tools.local_stack import LocalStack, StackSettings, cash_receipt, post_json
from agent.tools.powercut_audit import ZERO_COUNTS
from agent.tools.powercut_control import CutFs
from offline_store.database import open_database
from offline_store.migrations import MIGRATIONS, apply_migrations
from printers.layout import COPY_BANNER
from tests.e2e.stack import quiet_settings, wait_for
from tests.offline_store.test_archive import CUTOFF, NOW, _history
from tests.printers.emulator import PrinterEmulator
from tests.tools.harness import run_report

pytestmark = pytest.mark.e2e


def _fuse_missing() -> str | None:
    if os.geteuid() != 0:
        return "power cuts on FUSE need root (mounting)"
    if not Path("/dev/fuse").exists():
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "no libfuse 3 (apt-get install fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"mfusepy cannot load libfuse: {exc}"
    return None


_MISSING = _fuse_missing()
needs_fuse = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


class GatedPrinter(PrinterEmulator):
    """Answers the first status query only when the test opens the gate: the print job is
    claimed (`printing`, committed) and its bytes not yet sent until then."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.asked = threading.Event()

    def status_byte(self, function: int) -> int:
        self.asked.set()
        self.gate.wait(timeout=30)
        return super().status_byte(function)


@pytest.fixture
def cut_fs(tmp_path: Path) -> Iterator[CutFs]:
    fs = CutFs(tmp_path / "cut.sock", tmp_path / "state", seed=1)
    fs.start()
    try:
        yield fs
    finally:
        fs.stop()


def _tickets(printed: bytes, uid: str) -> list[bool]:
    """Each ticket of `uid` on the paper: True when it says «ΑΝΤΙΓΡΑΦΟ»."""
    banner = COPY_BANNER.encode("cp1253")
    return [banner in t for t in printed.split(b"\x1dV") if uid.encode() in t]


@needs_fuse
def test_a_cut_between_the_paper_and_the_printed_commit_prints_a_copy_not_a_second_original(
    tmp_path: Path, cut_fs: CutFs
) -> None:
    """The receipt reached the paper, the power went before `printed` was on disk: after the
    restart the job is still `printing`. Printed again as an original it was twice on paper
    without «ΑΝΤΙΓΡΑΦΟ»; now the second print is a copy."""
    with GatedPrinter() as printer:
        settings: StackSettings = quiet_settings(
            printer_backend="network", printer_port=printer.port
        )
        stack = LocalStack(tmp_path, settings)
        try:
            stack.start()
            with stack.client() as till:
                body = {**cash_receipt("cut-print-1"), "delivery": {"print": True}}
                answer = post_json(till, "/v1/receipts", body).json()
            assert printer.asked.wait(timeout=30), "the printer was never asked for its status"
            assert stack.daemon is not None
            cut_fs.arm(1, torn=False, victims=[stack.daemon.pid])  # the next change: the commit
            printer.gate.set()
            stack.daemon.wait(timeout=30)
            last_cut = cut_fs.state()["last_cut"]
            assert last_cut is not None and last_cut["killed"] == [stack.daemon.pid]
            assert _tickets(printer.printed, answer["uid"]) == [False]  # the original, on paper
            cut_fs.resume()

            stack.start_daemon()
            wait_for(
                lambda: len(_tickets(printer.printed, answer["uid"])) == 2,
                timeout_s=30,
                what="the interrupted job printed again",
            )
            assert _tickets(printer.printed, answer["uid"]) == [False, True]
        finally:
            stack.stop()


@needs_fuse
def test_a_short_powercut_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """`pos-agent powercut` in small: a migration cut until done, sales of every kind with an
    offline period, exactly 25 cuts (some torn, some inside the start-up) and an audit after
    each: of what changed, and every fourth of everything."""
    completed, report = run_report(
        "agent",
        *("powercut", "--sales", "80", "--cuts", "25", "--seed", "3", "--whole-audit-every", "4"),
        *("--keep", str(tmp_path / "run")),
        out=tmp_path / "powercut.json",
        timeout_s=300,
    )
    details = report["details"]
    assert report["sales"] >= 80
    assert details["cuts_while_selling"] == 25, details
    assert report["fs_cuts"] == 25 + details["migration_cuts"], details
    assert details["whole_audits"] >= 6 and details["audits"] > details["whole_audits"], details
    nonzero = {key: report[key] for key in ZERO_COUNTS if report[key] != 0}
    assert nonzero == {}, (nonzero, details["problems"])
    assert report["journal_ok"] is True
    assert details["migration_cuts"] >= 1 and details["torn_cuts"] >= 1, details
    assert completed.returncode == 0, completed.stdout[-3000:]


_UPGRADE = (
    "import sys; from datetime import datetime; from pathlib import Path; "
    "from offline_store.upgrade import upgrade_database; "
    "print(upgrade_database(Path(sys.argv[1]), now=datetime.now()).backup)"
)


def _previous_schema(database: Path) -> None:
    for leftover in [*database.parent.glob("pos-agent.sqlite3*"), *database.parent.glob("*/*")]:
        leftover.unlink()
    with closing(sqlite3.connect(database, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        apply_migrations(conn, MIGRATIONS[:-1])
        conn.execute("INSERT INTO meta (key, value) VALUES ('before-upgrade', 'kept')")


@needs_fuse
def test_a_cut_inside_the_upgrade_never_leaves_a_broken_backup(tmp_path: Path, cut_fs: CutFs):
    """The upgrade's backup copy cut at one call after another: the next attempt's backup
    (the one `pos-agent migrate` names to the technician) is always a whole database at the
    previous schema. Before, a copy cut short, or its `-journal`, was taken for the backup."""
    database = tmp_path / "state" / "pos-agent.sqlite3"
    previous = MIGRATIONS[-2].version
    cut = 0
    for after in range(96, 150, 9):  # from the end of the backup copy to the swap
        _previous_schema(database)
        attempt = subprocess.Popen([sys.executable, "-c", _UPGRADE, str(database)])
        cut_fs.arm(after, torn=False, victims=[attempt.pid])
        attempt.wait(timeout=60)
        if cut_fs.state()["frozen"]:
            cut += 1
            cut_fs.resume()
        cut_fs.disarm()
        done = subprocess.run(
            [sys.executable, "-c", _UPGRADE, str(database)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        backup = Path(done.stdout.strip())
        with closing(sqlite3.connect(f"{backup.as_uri()}?mode=ro", uri=True)) as conn:
            assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok", (after, backup)
            assert conn.execute("PRAGMA user_version").fetchone()[0] == previous, (after, backup)
            kept = conn.execute("SELECT value FROM meta WHERE key = 'before-upgrade'").fetchone()
            assert kept == ("kept",), (after, backup)
    assert cut >= 5


@needs_fuse
def test_a_retry_answered_after_a_sync_is_on_disk_before_the_till_reads_it(
    tmp_path: Path, cut_fs: CutFs
) -> None:
    """The receipt went out offline; the sync recorded its MARK and authentication code
    without waiting for the disk (as designed); the till's retry (same request_id) was
    answered with them; then the power went. Before, the store came back without them, and
    the re-send's 409 gave back the MARK but never the authentication code the till had."""
    stack = LocalStack(tmp_path, quiet_settings())
    try:
        stack.start()
        body = cash_receipt("cut-replay-1")
        stack.set_faults("down")
        with stack.client() as till:
            offline = post_json(till, "/v1/receipts", body).json()
            assert offline["state"] == "delayed", offline
            stack.set_faults("ok")
            assert till.post("/v1/sync").status_code == 200
            told = post_json(till, "/v1/receipts", body).json()
        assert told["mark"] is not None and told["authentication_code"], told
        assert stack.daemon is not None
        cut_fs.cut(torn=False, victims=[stack.daemon.pid])
        stack.daemon.wait(timeout=30)
        cut_fs.resume()
        stack.start_daemon()
        with closing(stack.open_store()) as conn:
            doc = store.get_by_request_id(conn, "cut-replay-1")
        assert doc is not None
        assert (doc.mark, doc.authentication_code) == (told["mark"], told["authentication_code"])
    finally:
        stack.stop()


@needs_fuse
def test_a_cut_after_the_first_archive_batch_keeps_its_directory(tmp_path: Path, cut_fs: CutFs):
    """The first batch creates the archive directory, writes and syncs its file, and seals it in
    the database; then the power goes. Before, the new directory's name was never synced in the
    state directory: it was gone after the cut, and the sealed batch with it."""
    state = tmp_path / "state"
    conn = open_database(state / "pos-agent.sqlite3", now=NOW)
    _history(conn)
    assert store.archive_slice(conn, state / "archive", cutoff=CUTOFF, now=NOW) is not None
    cut_fs.cut(torn=False, victims=[])
    conn.close()
    cut_fs.resume()
    with closing(open_database(state / "pos-agent.sqlite3", now=NOW)) as conn:
        assert len(store.archive_batches(conn)) == 1
        history = store.verify_history(conn, state / "archive")
    assert history.ok, history.problem
