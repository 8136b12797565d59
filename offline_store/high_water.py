"""The high-water mark: how far the database had got, kept outside the database.

SQLite keeps its promises only for the files it is given. A restore of only the main file, a
WAL deleted or truncated after a crash, an SD card that hands back an older block: each opens
as a healthy database that is simply *behind*. Its counters then hand out numbers the provider
already holds, and a 409 for the reused number would carry another sale's MARK.

So every time a number is allocated, before the till is told, the last number of each series
and the journal's head (`seq`, `hash`) are written to a small file beside the database
(`high-water.json`: written to a temporary file, fsynced, renamed over the old one, directory
fsynced). At start the database is compared with it: a series whose counter is below the mark,
or a journal without the recorded head, was rolled back. The file may lag the database (a crash
between the commit and the write), never lead it, so only "database behind the file" is a
rollback.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from offline_store.numbering import last_numbers

HIGH_WATER_FILE = "high-water.json"


@dataclass(frozen=True)
class HighWaterMark:
    last_numbers: dict[str, int] = field(default_factory=dict)
    journal_seq: int = 0
    journal_hash: str = ""

    def as_json(self) -> str:
        return json.dumps(
            {
                "last_numbers": self.last_numbers,
                "journal_seq": self.journal_seq,
                "journal_hash": self.journal_hash,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> HighWaterMark:
        raw = json.loads(text)
        return cls(
            last_numbers={str(k): int(v) for k, v in raw["last_numbers"].items()},
            journal_seq=int(raw["journal_seq"]),
            journal_hash=str(raw["journal_hash"]),
        )


@dataclass(frozen=True)
class Rollback:
    """What the database lacks compared with the mark. `series`: series whose counter is behind
    (series → (database's last number, the mark's)); `journal`: the journal head is missing or
    differs."""

    series: dict[str, tuple[int, int]]
    journal: str | None

    def __bool__(self) -> bool:
        return bool(self.series) or self.journal is not None


class HighWaterFileDamaged(Exception):
    """The mark file cannot be read: it is not silently replaced (that would hide a rollback)."""


def current_mark(conn: sqlite3.Connection) -> HighWaterMark:
    """The database's own position: its counters and journal head (two indexed reads)."""
    head = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    return HighWaterMark(
        last_numbers=last_numbers(conn),
        journal_seq=int(head["seq"]) if head else 0,
        journal_hash=str(head["hash"]) if head else "",
    )


def read_mark(state_dir: Path) -> HighWaterMark | None:
    """None when no mark was ever written (a new install, or a database older than marks)."""
    path = state_dir / HIGH_WATER_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return HighWaterMark.from_json(text)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HighWaterFileDamaged(f"{path} cannot be read ({exc})") from exc


def write_mark(state_dir: Path, mark: HighWaterMark) -> None:
    """Atomically replace the mark, durable before this returns."""
    path = state_dir / HIGH_WATER_FILE
    fresh = path.with_name(path.name + ".new")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.write(fd, mark.as_json().encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(fresh, path)
    directory = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def compare_with_mark(conn: sqlite3.Connection, mark: HighWaterMark) -> Rollback:
    """The database against the mark: behind in any series, or missing the journal head."""
    numbers = last_numbers(conn)
    behind = {
        series: (numbers.get(series, 0), recorded)
        for series, recorded in mark.last_numbers.items()
        if numbers.get(series, 0) < recorded
    }
    journal = None
    if mark.journal_seq:
        row = conn.execute("SELECT hash FROM journal WHERE seq = ?", (mark.journal_seq,)).fetchone()
        if row is None:
            head = current_mark(conn).journal_seq
            journal = f"journal ends at entry {head}, the mark records entry {mark.journal_seq}"
        elif row["hash"] != mark.journal_hash:
            journal = f"journal entry {mark.journal_seq} differs from the one recorded"
    return Rollback(series=behind, journal=journal)
