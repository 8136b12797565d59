"""Copies the sandbox store's WAL back into the database file, off the event loop.

SQLite's automatic checkpoint runs inside whichever commit crosses 1000 WAL pages, and with
`synchronous=NORMAL` a checkpoint fsyncs twice: every few hundred documents the event loop
stalled for 10-150 ms while every request in flight waited. A PASSIVE checkpoint on a connection
of its own never blocks the writer, and sqlite3 releases the GIL while it runs.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

INTERVAL_S = 0.25


class Checkpointer:
    def __init__(self, path: Path, interval_s: float = INTERVAL_S) -> None:
        self._path = path
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Returns once the thread's connection is closed, so the writer's close is the last one
        and folds the rest of the WAL in."""
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None)
        try:
            while not self._stopping.wait(self._interval_s):
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()
