"""The daemon brings its database to its own schema at start, before it answers: what a package
upgrade relies on (postinst restarts only the service, the tills wait in the socket's backlog).
A database from a newer agent (a downgrade) stops the start with a message that says so."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from agent.core.answers import DrawerAnswer
from agent.core.drawer import OPEN_DRAWER
from agent.core.request_identity import request_hash, wire
from agent.fiscal.orders import DrawerOpenRequest
from agent.json_codec import dumps
from agent.tools.local_stack import LocalStack, cash_receipt, post_json
from offline_store.migrations import MIGRATIONS, apply_migrations, schema_version
from offline_store.packing import pack_answer
from tests.e2e.stack import quiet_settings

LATEST = MIGRATIONS[-1].version


def _database_at(path: Path, version: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, MIGRATIONS[:version])
    conn.close()


def test_an_older_schema_is_migrated_with_a_backup_before_the_first_answer(
    tmp_path: Path,
) -> None:
    stack = LocalStack(tmp_path, quiet_settings())
    _database_at(stack.database_path, LATEST - 1)
    try:
        stack.start()
        with stack.client() as client:
            answer = post_json(client, "/v1/receipts", cash_receipt("after-start-migration"))
    finally:
        stack.stop()

    assert answer.status_code == 201, answer.text
    conn = sqlite3.connect(stack.database_path)
    assert schema_version(conn) == LATEST
    conn.close()
    (backup,) = (stack.state_dir / "backups").iterdir()
    assert backup.name.startswith(f"pos-agent.sqlite3.v{LATEST - 1}.")
    log = (tmp_path / "daemon.log").read_text()
    assert f"migrated from schema v{LATEST - 1} to v{LATEST}" in log


def test_a_newer_schema_stops_the_start_and_changes_nothing(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path, quiet_settings())
    _database_at(stack.database_path, LATEST)
    conn = sqlite3.connect(stack.database_path)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    digest = hashlib.sha256(stack.database_path.read_bytes()).hexdigest()
    try:
        with pytest.raises(RuntimeError, match="daemon exited with 2"):
            stack.start()
    finally:
        stack.stop()

    log = (tmp_path / "daemon.log").read_text()
    assert (
        f"database schema version {LATEST + 1} is newer than this agent knows ({LATEST}); "
        "install the newer pos-agent again instead of downgrading"
    ) in log
    assert "Traceback" not in log
    assert hashlib.sha256(stack.database_path.read_bytes()).hexdigest() == digest
    assert not (stack.state_dir / "backups").exists()


def test_an_answer_remembered_before_the_created_flag_replays_with_its_first_status(
    tmp_path: Path,
) -> None:
    """A drawer kick answered by an agent whose store recorded HTTP's 201: after the upgrade the
    same request_id answers 201 with the same body, and kicks nothing again."""
    stack = LocalStack(tmp_path, quiet_settings(cash_drawer="pin2"))
    _database_at(stack.database_path, 10)
    request = DrawerOpenRequest(request_id="kick-before-upgrade")
    first = DrawerAnswer(
        kick_id=1, state="queued", caller="uid=0", requested_at="2026-01-15T12:00:00+02:00"
    )
    conn = sqlite3.connect(stack.database_path, isolation_level=None)
    conn.execute(
        "INSERT INTO api_requests (request_id, endpoint, body_hash, status_code, response, "
        "response_packed, document_id, created_at) VALUES (?, ?, ?, 201, '', ?, NULL, ?)",
        (
            request.request_id,
            OPEN_DRAWER,
            request_hash(request),
            pack_answer(dumps(wire(first)).decode()),
            "2026-01-15T12:00:00+02:00",
        ),
    )
    conn.close()
    try:
        stack.start()
        with stack.client() as client:
            replay = post_json(client, "/v1/drawer/open", request.model_dump())
    finally:
        stack.stop()

    assert (replay.status_code, replay.json()) == (201, first.model_dump(mode="json"))
    conn = sqlite3.connect(stack.database_path)
    assert conn.execute("SELECT count(*) FROM drawer_kicks").fetchone()[0] == 0
    conn.close()
