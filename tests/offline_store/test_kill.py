"""SIGKILL a writer mid-stream: every acknowledged document must survive, intact and gap-free."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from offline_store import get_by_request_id, numbering_gaps, open_database, verify_journal

ACKS_BEFORE_KILL = 300
REPO = Path(__file__).resolve().parents[2]


def test_acknowledged_documents_survive_sigkill(tmp_path):
    path = tmp_path / "store.db"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.offline_store.writer", str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(15, child.kill)  # a hung child fails the test, never the run
    watchdog.start()
    acked: list[str] = []
    try:
        assert child.stdout is not None
        while len(acked) < ACKS_BEFORE_KILL:
            line = child.stdout.readline()
            assert line, f"writer stopped early: {child.stderr.read() if child.stderr else ''}"
            acked.append(line.split()[1])
        os.kill(child.pid, signal.SIGKILL)
        # Read through the same text wrapper: it may already hold lines past the 300th, which
        # communicate() would skip (it reads the pipe's file descriptor directly).
        rest = child.stdout.read()
        child.wait()
    finally:
        watchdog.cancel()
    assert child.returncode == -signal.SIGKILL
    # Lines still in the pipe were printed after their commit returned: they count too.
    acked += [line.split()[1] for line in rest.splitlines() if line.startswith("ACK ")]

    conn = open_database(path)  # read-write: runs quick_check, raises if damaged
    assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    for request_id in acked:
        document = get_by_request_id(conn, request_id)
        assert document is not None, request_id
        assert document.state == "pending"
        assert document.payload == f"payload-{request_id}".encode()
    stored = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    assert len(acked) <= stored <= len(acked) + 1  # at most one committed but not yet ACKed
    check = verify_journal(conn)
    assert check.ok, check
    assert check.entries == 2 * stored
    assert numbering_gaps(conn) == {}
