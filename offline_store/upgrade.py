"""Migrating the database file before the daemon opens it (at every start, and `pos-agent
migrate`), all or nothing.

`apply_migrations` makes each version step atomic, but an upgrade may take several steps, and
a step that fails half-way through a chain would leave the file at a version no installed agent
was built for. So the upgrade never touches the original until the whole chain has succeeded:

1. checkpoint the original's WAL into the file and close it (no -wal file may stay behind: it
   would be replayed onto the migrated file after the swap);
2. copy it, with SQLite's backup API, to a dated backup that is kept: written as `.partial`,
   fsynced, then renamed to its name and the directory fsynced, so a backup under its name is
   always whole (a power cut in the middle of the copy left a half copy, or its `-journal`,
   that the next attempt took for the backup);
3. copy it again to `<db>.migrating` and run every migration there;
4. fsync the copy and `rename()` it over the original (atomic), fsync the directory.

A crash or a failing migration before step 4 leaves the original exactly as it was (only the
`.migrating` copy is lost); after step 4 the new file is whole. The caller holds the daemon's
single-instance lock, so nothing writes the file meanwhile.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from offline_store.durable_names import fsync_directory
from offline_store.errors import SchemaTooNew, StoreError
from offline_store.migrations import MIGRATIONS, Migration, apply_migrations, schema_version

BACKUP_DIR_NAME = "backups"
_BACKUP_STAMP = re.compile(r"\d{8}T\d{6}")


class DatabaseInUse(StoreError):
    """Another process still has the database open, so its WAL cannot be folded in."""


class MigrationFailed(StoreError):
    """A migration step failed; the original file is untouched (the message says where the
    backup is)."""


@dataclass(frozen=True)
class UpgradeOutcome:
    """What `upgrade_database` did: `backup` is None when there was nothing to migrate."""

    from_version: int
    to_version: int
    applied: tuple[int, ...]
    backup: Path | None


def upgrade_database(
    path: Path,
    *,
    now: datetime,
    migrations: tuple[Migration, ...] = MIGRATIONS,
    before_copying: Callable[[], None] = lambda: None,
) -> UpgradeOutcome:
    """Bring the file at `path` to the latest schema (see the module docstring for the order).

    `before_copying` is called once there is work to do, before the first copy (the daemon asks
    systemd for more start-up time there: copies and migrations of years of history take minutes).

    Raises `MigrationFailed` (original untouched), `DatabaseInUse`, or `SchemaTooNew` for a file
    newer than `migrations` know.
    """
    latest = migrations[-1].version if migrations else 0
    current = _checkpointed_version(path)
    if current == latest:
        return UpgradeOutcome(current, current, (), None)
    if current > latest:
        raise SchemaTooNew(current, latest)
    before_copying()
    backup = _earlier_backup(path, current)
    if backup is None:
        backup = path.parent / BACKUP_DIR_NAME / f"{path.name}.v{current}.{now:%Y%m%dT%H%M%S}"
        _durable_copy(path, backup)
    work = path.with_name(path.name + ".migrating")
    work.unlink(missing_ok=True)
    _copy(path, work)
    try:
        conn = sqlite3.connect(work, isolation_level=None)
        try:
            applied = apply_migrations(conn, migrations)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        work.unlink(missing_ok=True)
        raise MigrationFailed(
            f"migrating {path} from schema v{current} failed ({exc}); the database is "
            f"untouched, a copy is at {backup}"
        ) from exc
    _replace(work, path)
    return UpgradeOutcome(current, latest, tuple(applied), backup)


def _earlier_backup(path: Path, version: int) -> Path | None:
    """A backup of this very file taken by an earlier attempt: same schema version, written after
    the file last changed. The daemon migrates at every start, so a migration that keeps failing
    (retried by systemd every few seconds) must not fill the disk with identical copies."""
    changed = path.stat().st_mtime_ns
    candidates = sorted(
        candidate
        for candidate in (path.parent / BACKUP_DIR_NAME).glob(f"{path.name}.v{version}.*")
        if _BACKUP_STAMP.fullmatch(candidate.name.rsplit(".", 1)[-1])
    )
    for candidate in reversed(candidates):
        if candidate.stat().st_mtime_ns >= changed:
            return candidate
    return None


def _checkpointed_version(path: Path) -> int:
    """The schema version, after folding the WAL into the main file and removing it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        version = schema_version(conn)
    finally:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        raise DatabaseInUse(
            f"{path} is still open in another process ({wal} stays); stop it and try again"
        )
    return version


def consistent_copy(source: Path, target: Path) -> None:
    """What the database holds now, main file and WAL together (SQLite's backup API), even
    while another process writes it."""
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _copy(source: Path, target: Path) -> None:
    """A consistent copy with the source's owner and mode (the daemon's user must own it).

    chown(2) only when the owner differs (`pos-agent migrate` run as root): the daemon, which
    migrates as the file's owner, has chown outside its system-call filter."""
    consistent_copy(source, target)
    info = source.stat()
    copied = target.stat()
    if (copied.st_uid, copied.st_gid) != (info.st_uid, info.st_gid):
        os.chown(target, info.st_uid, info.st_gid)
    target.chmod(info.st_mode & 0o777)


def _durable_copy(source: Path, backup: Path) -> None:
    """The backup, whole under its name or not there at all (see step 2)."""
    directory = backup.parent
    new_directory = not directory.exists()
    directory.mkdir(mode=0o750, exist_ok=True)
    if new_directory:
        fsync_directory(directory.parent)
    for stale in directory.glob("*.partial*"):  # copies a crash cut short
        stale.unlink()
    partial = backup.with_name(backup.name + ".partial")
    _copy(source, partial)
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, backup)
    fsync_directory(directory)


def _replace(work: Path, path: Path) -> None:
    with work.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(work, path)
    fsync_directory(path.parent)
