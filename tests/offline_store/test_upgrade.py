"""The package upgrade's migration: a backup first, all steps or none, the original untouched on
failure. The migration lists are built here on top of the real schema (`MIGRATIONS`), so the
file really goes through the real v1 and the steps a future version would add."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from offline_store import SchemaTooNew, StoreError, insert_document, open_database, transaction
from offline_store.migrations import MIGRATIONS, Migration, schema_version
from offline_store.upgrade import DatabaseInUse, MigrationFailed, upgrade_database
from tests.offline_store.factory import T0, builder, open_store

LATEST = MIGRATIONS[-1].version
ADD_NOTE = Migration(LATEST + 1, "ALTER TABLE documents ADD COLUMN note TEXT;")
ADD_INDEX = Migration(LATEST + 2, "CREATE INDEX documents_note ON documents (note);")
BROKEN = Migration(LATEST + 2, "CREATE INDEX documents_x ON documents (no_such_column);")


def _store_with_a_receipt(tmp_path: Path) -> Path:
    """A database as a running daemon leaves it: WAL mode, the last write still in the WAL."""
    conn = open_store(tmp_path)
    with transaction(conn):
        insert_document(conn, "A", builder("sold-before-upgrade"), now=T0)
    path = tmp_path / "store.db"
    assert path.with_name("store.db-wal").stat().st_size > 0
    conn.close()
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_migrates_every_step_and_keeps_a_backup(tmp_path: Path) -> None:
    path = _store_with_a_receipt(tmp_path)

    outcome = upgrade_database(path, now=T0, migrations=(*MIGRATIONS, ADD_NOTE, ADD_INDEX))

    assert (outcome.from_version, outcome.to_version) == (LATEST, LATEST + 2)
    assert outcome.applied == (LATEST + 1, LATEST + 2)
    assert outcome.backup == tmp_path / "backups" / f"store.db.v{LATEST}.20260115T100000"
    conn = sqlite3.connect(path)
    assert schema_version(conn) == LATEST + 2
    assert conn.execute("SELECT request_id, note FROM documents").fetchall() == [
        ("sold-before-upgrade", None)
    ]
    conn.close()
    backup = sqlite3.connect(outcome.backup)
    assert schema_version(backup) == LATEST
    assert backup.execute("SELECT request_id FROM documents").fetchall() == [
        ("sold-before-upgrade",)
    ]
    backup.close()
    assert not path.with_name("store.db.migrating").exists()


def test_a_failing_step_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = _store_with_a_receipt(tmp_path)
    upgrade_database(path, now=T0)  # folds the WAL in: the file alone is the database now
    before = _digest(path)

    with pytest.raises(MigrationFailed, match="untouched, a copy is at") as failure:
        upgrade_database(path, now=T0, migrations=(*MIGRATIONS, ADD_NOTE, BROKEN))

    # ADD_NOTE succeeded on the copy, BROKEN failed: the original has neither.
    assert _digest(path) == before
    assert not path.with_name("store.db.migrating").exists()
    assert "no_such_column" in str(failure.value)
    conn = sqlite3.connect(path)
    assert schema_version(conn) == LATEST
    assert "note" not in [row[1] for row in conn.execute("PRAGMA table_info(documents)")]
    conn.close()


def test_a_current_database_is_left_alone(tmp_path: Path) -> None:
    path = _store_with_a_receipt(tmp_path)

    outcome = upgrade_database(path, now=T0)

    assert (outcome.applied, outcome.backup) == ((), None)
    assert not (tmp_path / "backups").exists()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = _store_with_a_receipt(tmp_path)
    upgrade_database(path, now=T0, migrations=(*MIGRATIONS, ADD_NOTE))
    before = _digest(path)

    with pytest.raises(StoreError, match="newer than this agent knows"):
        upgrade_database(path, now=T0)

    assert _digest(path) == before


def test_an_open_database_is_not_swapped(tmp_path: Path) -> None:
    """A reader keeps the WAL alive; swapping the file under it would lose its WAL frames."""
    path = _store_with_a_receipt(tmp_path)
    reader = open_store(tmp_path)
    try:
        with pytest.raises(DatabaseInUse, match="still open in another process"):
            upgrade_database(path, now=T0, migrations=(*MIGRATIONS, ADD_NOTE))
    finally:
        reader.close()


def test_a_retried_failure_reuses_its_backup_and_asks_for_time_once_per_try(
    tmp_path: Path,
) -> None:
    """The daemon migrates at every start and systemd restarts a failed start: the retries must
    not fill the disk with copies of the same unchanged file."""
    path = _store_with_a_receipt(tmp_path)
    upgrade_database(path, now=T0)
    asked: list[str] = []
    broken = (*MIGRATIONS, ADD_NOTE, BROKEN)

    for _ in range(3):
        with pytest.raises(MigrationFailed):
            upgrade_database(
                path, now=T0, migrations=broken, before_copying=lambda: asked.append("x")
            )
    upgrade_database(path, now=T0, before_copying=lambda: asked.append("current"))

    assert [p.name for p in (tmp_path / "backups").iterdir()] == [
        f"store.db.v{LATEST}.20260115T100000"
    ]
    assert asked == ["x", "x", "x"]


def test_a_changed_file_gets_a_fresh_backup(tmp_path: Path) -> None:
    path = _store_with_a_receipt(tmp_path)
    upgrade_database(path, now=T0)
    with pytest.raises(MigrationFailed):
        upgrade_database(path, now=T0, migrations=(*MIGRATIONS, ADD_NOTE, BROKEN))
    conn = open_store(tmp_path)
    with transaction(conn):
        insert_document(conn, "A", builder("sold-after-the-failure"), now=T0)
    conn.close()

    outcome = upgrade_database(path, now=T0.replace(minute=5), migrations=(*MIGRATIONS, ADD_NOTE))

    assert outcome.backup == tmp_path / "backups" / f"store.db.v{LATEST}.20260115T100500"
    backup = sqlite3.connect(outcome.backup)
    assert len(backup.execute("SELECT request_id FROM documents").fetchall()) == 2
    backup.close()


def test_a_newer_database_is_not_read_either(tmp_path: Path) -> None:
    """A read-only open (status and doctor while the daemon is down) refuses it too."""
    path = _store_with_a_receipt(tmp_path)
    upgrade_database(path, now=T0, migrations=(*MIGRATIONS, ADD_NOTE))

    with pytest.raises(SchemaTooNew, match=f"newer than this agent knows \\({LATEST}\\)"):
        open_database(path, read_only=True)
