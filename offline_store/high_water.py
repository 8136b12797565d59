"""The high-water mark: how far the database had got, kept outside the database.

SQLite keeps its promises only for the files it is given. A restore of only the main file, a
WAL deleted or truncated after a crash, an SD card that hands back an older block: each opens
as a healthy database that is simply *behind*. Its counters then hand out numbers the provider
already holds, and a 409 for the reused number would carry another sale's MARK.

So every time a number is allocated or a document frozen, before the till is told, the last
number of each series and the journal's head (`seq`, `hash`) are written to a small file beside
the database (`high-water.json`, two checksummed slots written in turn, see `MarkFile`). At start the database is compared with it: a series whose counter is below the mark,
or a journal without the recorded head, was rolled back. The file may lag the database (a crash
between the commit and the write), never lead it, so only "database behind the file" is a
rollback.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from offline_store.durable_names import fsync_directory
from offline_store.journal import journal_entry, journal_link
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
    seq, link = journal_link(conn) or (0, "")
    return HighWaterMark(last_numbers=last_numbers(conn), journal_seq=seq, journal_hash=link)


SLOT_BYTES = 4096
_SLOT_HEADER = b"HWM1 "


def read_mark(state_dir: Path) -> HighWaterMark | None:
    """The newest intact slot; None when no mark was ever written (a new install, or a database
    older than marks)."""
    path = state_dir / HIGH_WATER_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    slots = [_parse_slot(data[i : i + SLOT_BYTES]) for i in range(0, 2 * SLOT_BYTES, SLOT_BYTES)]
    intact = [slot for slot in slots if slot is not None]
    if not intact:
        raise HighWaterFileDamaged(f"{path} holds no intact mark")
    return max(intact, key=lambda slot: slot[0])[1]


class MarkFile:
    """The mark on disk: two fixed slots of `SLOT_BYTES`, written in turn with a sequence number
    and a SHA-256, so a torn write spoils only the slot being written and the other still holds
    the previous mark. The blocks are allocated once, when the file is made: later writes only
    overwrite them, so the mark is still written on a full disk (a rename of a new file needed
    fresh blocks, and a full disk made the mark lag behind the database it guards)."""

    def __init__(self, state_dir: Path) -> None:
        path = state_dir / HIGH_WATER_FILE
        existed = path.exists()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            if not existed or os.fstat(self._fd).st_size < 2 * SLOT_BYTES:
                os.posix_fallocate(self._fd, 0, 2 * SLOT_BYTES)
                os.fsync(self._fd)
                fsync_directory(state_dir)
            data = os.pread(self._fd, 2 * SLOT_BYTES, 0)
        except BaseException:
            os.close(self._fd)
            raise
        slots = [_parse_slot(data[i : i + SLOT_BYTES]) for i in (0, SLOT_BYTES)]
        self._seq = max((slot[0] for slot in slots if slot is not None), default=0)

    def write(self, mark: HighWaterMark) -> None:
        """Durable before this returns (one fdatasync, no new blocks)."""
        body = mark.as_json().encode("utf-8")
        seq = self._seq + 1
        header = _SLOT_HEADER + b"%020d %s\n" % (seq, hashlib.sha256(body).hexdigest().encode())
        slot = header + body
        if len(slot) > SLOT_BYTES:
            raise ValueError("the high-water mark outgrew its slot (too many series)")
        os.pwrite(self._fd, slot.ljust(SLOT_BYTES, b" "), (seq % 2) * SLOT_BYTES)
        os.fdatasync(self._fd)
        self._seq = seq

    def close(self) -> None:
        os.close(self._fd)


def write_mark(state_dir: Path, mark: HighWaterMark) -> None:
    """One write through a `MarkFile` (tools and tests; the daemon keeps its file open)."""
    marks = MarkFile(state_dir)
    try:
        marks.write(mark)
    finally:
        marks.close()


def _parse_slot(slot: bytes) -> tuple[int, HighWaterMark] | None:
    if not slot.startswith(_SLOT_HEADER):
        return None
    header, _, rest = slot.partition(b"\n")
    try:
        seq_text, digest = header[len(_SLOT_HEADER) :].split(b" ")
        body = rest.rstrip(b" ")
        if hashlib.sha256(body).hexdigest().encode() != digest:
            return None
        return int(seq_text), HighWaterMark.from_json(body.decode("utf-8"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


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
        entry = journal_entry(conn, mark.journal_seq)
        head = current_mark(conn).journal_seq
        if entry is None and head < mark.journal_seq:
            journal = f"journal ends at entry {head}, the mark records entry {mark.journal_seq}"
        # A missing entry below the head was moved to a sealed archive file (the delete
        # triggers let nothing else remove one): a shop closed for months is no rollback.
        elif entry is not None and entry.hash != mark.journal_hash:
            journal = f"journal entry {mark.journal_seq} differs from the one recorded"
    return Rollback(series=behind, journal=journal)
