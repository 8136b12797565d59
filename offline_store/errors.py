"""Errors the store raises, so callers can tell a damaged file from a caller's mistake."""

from __future__ import annotations

import sqlite3
from enum import StrEnum


class StoreError(Exception):
    """Base class for every error raised on purpose by `offline_store`."""


class DatabaseDamaged(StoreError):
    """The SQLite file failed its integrity check or is not a database at all."""


class SchemaTooNew(StoreError):
    """The file was written by a newer agent (after a downgrade): this code cannot know what its
    schema means, so it neither migrates nor reads it."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this agent knows ({known}); "
            "install the newer pos-agent again instead of downgrading"
        )
        self.found = found
        self.known = known


class TransactionError(StoreError):
    """A write was attempted outside `transaction()`, or a transaction was nested."""


class InvalidTransition(StoreError):
    """A state change was asked from a state that does not allow it."""


class NotFound(StoreError):
    """The row a state change refers to does not exist."""


class StorageFault(StrEnum):
    """Why the storage refused a write: the register's fault, not the caller's or the data's."""

    FULL = "full"  # no space (or no inodes) left on the state filesystem
    READ_ONLY = "read_only"  # the filesystem went read-only (a failing SD card, an fsck remount)
    BUSY = "busy"  # another process holds the database lock
    IO_ERROR = "io_error"  # the device reports I/O errors


# SQLite's primary result codes (extended codes carry them in their low byte).
_FAULTS_BY_CODE = {
    13: StorageFault.FULL,  # SQLITE_FULL
    8: StorageFault.READ_ONLY,  # SQLITE_READONLY
    5: StorageFault.BUSY,  # SQLITE_BUSY
    6: StorageFault.BUSY,  # SQLITE_LOCKED
    10: StorageFault.IO_ERROR,  # SQLITE_IOERR
    14: StorageFault.IO_ERROR,  # SQLITE_CANTOPEN (e.g. the WAL cannot be created)
}


def storage_fault(exc: BaseException) -> StorageFault | None:
    """The storage fault an exception from the store stands for, or None (a bug, bad data)."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int):
            return _FAULTS_BY_CODE.get(code & 0xFF)
        return None
    if isinstance(exc, OSError):
        return {28: StorageFault.FULL, 30: StorageFault.READ_ONLY, 5: StorageFault.IO_ERROR}.get(
            exc.errno or 0
        )
    return None


class PackedDataDamaged(StoreError):
    """A packed request or payload no longer unpacks (bytes changed on disk): the document is
    never sent, and `status`/`doctor` report it with the altered payloads."""
