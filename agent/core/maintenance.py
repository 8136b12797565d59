"""The daemon's housekeeping over the years of history, in bounded slices.

Each run (every `retention.maintenance_interval_s`, in a worker thread on its own connection so
the event loop and the till never wait for it):
1. verifies the next slice of the journal's hash chain from the checkpoint kept in the database
   (`status` shows the last result; nothing re-hashes years of journal);
2. packs a slice of documents still stored by schema 1 (an upgraded database shrinks over days
   instead of the upgrade taking minutes at start), after learning a packing dictionary from
   the newest receipts when the last one is a month old (offline_store/dictionaries.py; a new
   register's first ones are `FirstDictionary`'s, seconds after its first receipts);
3. rewrites a slice of the print jobs an upgrade to schema 7 found, whose pages their cleared
   layouts left nearly empty (offline_store/print_compaction.py), and gives the freed pages
   back to the filesystem;
4. in the quiet hour (`retention.archive_hour`, Athens) moves one batch of accepted, printed
   receipts older than the retention to the monthly archive (offline_store/archive.py).
Every slice is bounded (entries, rows, documents), so a run takes well under a second and
holds the write lock for one short transaction at a time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

import offline_store as store
from agent.clock import ATHENS
from agent.config import AgentConfig

# ~0.1 s of hashing: the slice runs in a thread and shares the GIL with the event loop, so a
# bigger one showed up in the till's latency (50,000 entries tripled the issue p50 while it ran).
JOURNAL_SLICE = 5_000
PACK_SLICE = 500
# A few tens of milliseconds of small-row rewriting; a million old jobs take ~3 hours of runs.
PRINT_JOBS_SLICE = 5000
ARCHIVE_BATCH = 2000


# How often the daemon looks whether a new register's receipts can teach it a (full) packing
# dictionary: until then each receipt is packed with the built-in dictionary alone, 65-165
# bytes more than with the register's own, kept for the whole retention.
FIRST_DICTIONARY_LOOK_S = 1.0


@dataclass(frozen=True)
class MaintenanceRun:
    """What one run did, for the log and the tests."""

    journal: store.JournalCheck
    packed: int
    archived: store.ArchiveBatch | None
    learned: store.LearnedDictionary | None = None
    print_jobs: store.PrintCompaction | None = None


def run_maintenance(
    config: AgentConfig, now: datetime, *, archive: bool | None = None
) -> MaintenanceRun:
    """One run on a connection of its own. `archive=None` archives only in the quiet hour."""
    conn = store.open_database(config.database_path, check=False)
    try:
        journal = store.journal_slice(conn, limit=JOURNAL_SLICE, now=now)
        with store.transaction(conn):
            learned = store.learn_dictionary(conn, now=now)
            packed = store.compact_slice(conn, limit=PACK_SLICE)
        print_jobs = store.compact_print_jobs(conn, limit=PRINT_JOBS_SLICE)
        in_hour = now.astimezone(ATHENS).hour == config.retention.archive_hour
        batch = None
        if archive if archive is not None else in_hour:
            batch = archive_batch(conn, config, now)
        return MaintenanceRun(journal, packed, batch, learned, print_jobs)
    finally:
        conn.close()


def archive_batch(
    conn: sqlite3.Connection, config: AgentConfig, now: datetime
) -> store.ArchiveBatch | None:
    """One batch of what the retention lets go, or None when nothing is due."""
    cutoff = store.archive_cutoff(now.astimezone(ATHENS), config.retention.live_days)
    return store.archive_slice(
        conn, config.archive_dir, cutoff=cutoff, now=now, max_documents=ARCHIVE_BATCH
    )


@dataclass
class FirstDictionary:
    """A new register's packing dictionaries learned seconds after its first receipts (the
    first from `MIN_DOCUMENTS` payloads, the full one as soon as they fill the sample) instead
    of at the next maintenance run, a minute later (a busy start sells hundreds of receipts in
    that minute), and the full one not a month later (`learn_dictionary`).

    `due` runs on the daemon's event loop between requests, on the daemon's connection: two
    index reads, and True only when a receipt was stored since the last look and the newest
    dictionary does not fill the sample yet; once it does, `due` is False for good without
    reading anything (its monthly successor is the maintenance run's). `learn` runs in a worker
    thread on a connection of its own, like the maintenance run (at most 64 rows read, one
    short transaction): never on the till's path."""

    config: AgentConfig
    conn: sqlite3.Connection
    settled: bool = False
    _seen: int = field(default=0, repr=False)

    def due(self) -> bool:
        if self.settled:
            return False
        mark = store.learning_mark(self.conn)
        if mark is None:
            self.settled = True
            return False
        if mark == self._seen:
            return False
        self._seen = mark
        return True

    def learn(self, now: datetime) -> store.LearnedDictionary | None:
        conn = store.open_database(self.config.database_path, check=False)
        try:
            with store.transaction(conn):
                return store.learn_dictionary(conn, now=now)
        finally:
            conn.close()
