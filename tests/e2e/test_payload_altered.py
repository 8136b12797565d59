"""A frozen payload altered on disk (a flipped byte on the SD card, under SQLite, which keeps no
page checksums). Before, the altered receipt was sent and accepted, the journal's payload_sha256
no longer matched, and status and doctor said OK.

The promises: the altered document is never sent; the sync reports it; status is CRITICAL
naming it; doctor fails the database check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import offline_store as store
from agent.clock import ATHENS, athens_now
from agent.commands.doctor import check_database
from agent.config import load_config
from agent.core.answers import DocumentAnswer
from agent.core.maintenance import run_maintenance
from agent.core.status_report import Level, StatusReport
from agent.core.sync_report import SyncReport
from agent.tools.history import history_receipt
from agent.tools.local_stack import LocalStack, cash_receipt, post_json
from offline_store import archive as archive_module
from offline_store.payload_integrity import recorded_digest
from tests.e2e.stack import parsed, quiet_settings, running_stack, sample_value

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with running_stack(tmp_path, quiet_settings()) as local:
        yield local


def flip_a_byte_of(database: Path, stored: bytes) -> None:
    """Change one byte in the middle of the stored payload where it lies in the file, as a
    failing card would."""
    data = bytearray(database.read_bytes())
    at = data.find(stored)
    assert at >= 0 and data.find(stored, at + 1) < 0, "the payload is not stored once, whole"
    middle = at + len(stored) // 2
    data[middle] ^= 0x10
    database.write_bytes(bytes(data))


def test_an_altered_payload_is_never_sent_and_status_says_so(stack: LocalStack) -> None:
    stack.set_faults("down")
    with stack.client() as till:
        answer = parsed(post_json(till, "/v1/receipts", cash_receipt("altered-1")), DocumentAnswer)
        kept = parsed(post_json(till, "/v1/receipts", cash_receipt("altered-2")), DocumentAnswer)
    assert answer.state == kept.state == "delayed"
    assert stack.stop_daemon() == 0  # a clean stop: the rows are in the main file
    with closing(stack.open_store()) as conn:
        # The bytes as stored (packed), which is what a failing card changes.
        stored: bytes = conn.execute(
            "SELECT payload FROM documents WHERE id = ?", (answer.receipt_id,)
        ).fetchone()[0]
    flip_a_byte_of(stack.database_path, stored)

    stack.set_faults("ok")
    stack.start_daemon()
    with stack.client() as till:
        # After the start-up sync, which sent the other.
        report = parsed(till.post("/v1/sync"), SyncReport, 200)
        status = parsed(till.get("/v1/status"), StatusReport, 200)
        read = till.get(f"/v1/receipts/{kept.receipt_id}")
        assert parsed(read, DocumentAnswer, 200).state == "accepted"
        altered = till.get(f"/v1/receipts/{answer.receipt_id}").json()
    # The flipped byte leaves the packed payload unreadable, or readable with other bytes.
    assert altered.get("state") == "delayed" or altered["error"]["code"] == "receipt_unreadable"
    assert report.altered == [answer.receipt_id], report
    uids = {d["uid"] for d in stack.provider_documents()}
    assert uids == {kept.uid}, "the altered receipt reached the provider"
    assert status.exit_code == Level.CRITICAL
    assert status.store is not None and status.store.altered_payloads == [answer.receipt_id]
    assert any(f"receipt(s) {answer.receipt_id} are not sent" in f for f in status.findings), (
        status.findings
    )
    doctor = check_database(load_config(stack.config_path))
    assert doctor.level is Level.CRITICAL and "payloads altered" in doctor.detail, doctor


def test_a_return_held_behind_a_rejected_original_is_critical_naming_both(
    stack: LocalStack,
) -> None:
    """The original is rejected after its return was held behind it (recorded by the store's
    own transition while the daemon is stopped, as the sync records a 400): the return can
    never go out, and status, /metrics and doctor say so, naming the return and its original."""
    stack.set_faults("down")
    with stack.client() as till:
        sale = post_json(till, "/v1/receipts", cash_receipt("held-sale", quantity="2")).json()
        body = {**cash_receipt("held-credit"), "type": "11.4"}
        credit = post_json(
            till, "/v1/receipts", {**body, "correlated_receipt_id": sale["receipt_id"]}
        ).json()
    assert credit["state"] == "delayed", credit
    assert stack.stop_daemon() == 0
    conn = store.open_database(stack.database_path)
    with closing(conn), store.transaction(conn):
        store.mark_rejected(conn, sale["receipt_id"], error="bad data", now=datetime.now(ATHENS))
    stack.start_daemon()
    with stack.client() as till:
        status = till.get("/v1/status").json()
        metrics = till.get("/metrics").text
    [finding] = [f for f in status["findings"] if f"return {credit['receipt_id']} " in f]
    assert finding.startswith("CRITICAL: ")
    assert f"original receipt {sale['receipt_id']} " in finding and "rejected" in finding
    assert status["store"]["stranded_returns"][0]["original_id"] == sale["receipt_id"]
    assert sample_value(metrics, "pos_agent_stranded_return_documents", why="rejected") == 1
    doctor = check_database(load_config(stack.config_path))
    assert doctor.level is Level.CRITICAL and f"return {credit['receipt_id']} " in doctor.hint


def test_a_receipt_whose_freeze_an_earlier_archive_moved_is_checked_against_the_archive(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A register the earlier archive hit: it moved a delayed receipt's freeze entry (the
    payload's SHA-256) into the month file with the printed receipts issued after it. The
    receipt is checked against the archived entry: refused while the archive file breaks its
    seal (CRITICAL, as before), sent once the file is whole, with no finding in between."""
    config = load_config(stack.config_path)
    assert stack.stop_daemon() == 0
    old = (athens_now() - timedelta(days=200)).replace(hour=10)
    conn = store.open_database(config.database_path, check=False)
    with closing(conn), store.transaction(conn):
        delayed = history_receipt(conn, config, 1, old, outcome="delayed")
        for index in (2, 3):
            history_receipt(conn, config, index, old + timedelta(hours=index))
    with monkeypatch.context() as patch:  # the archive as it ran before it stopped there
        patch.setattr(archive_module, "_first_unsent_freeze", lambda conn: None)
        while run_maintenance(config, athens_now(), archive=True).archived is not None:
            pass
    with closing(stack.open_store()) as conn:
        assert store.get_document(conn, delayed.id) is not None
        assert recorded_digest(conn, delayed.id) is None, "the freeze entry is still live"
        [batch] = store.archive_batches(conn)
    path = config.archive_dir / batch.file
    whole = path.read_bytes()
    path.write_bytes(whole[:64] + bytes([whole[64] ^ 0x10]) + whole[65:])

    stack.set_faults("ok")
    stack.start_daemon()
    with stack.client() as till:
        refused = parsed(till.post("/v1/sync"), SyncReport, 200)
        critical = parsed(till.get("/v1/status"), StatusReport, 200)
        path.write_bytes(whole)
        status = parsed(till.get("/v1/status"), StatusReport, 200)
        report = parsed(till.post("/v1/sync"), SyncReport, 200)
        sent = parsed(till.get(f"/v1/receipts/{delayed.id}"), DocumentAnswer, 200)
    assert refused.altered == [delayed.id], refused
    assert critical.store is not None and critical.store.altered_payloads == [delayed.id]
    assert status.store is not None and status.store.altered_payloads == [], status.findings
    assert not any("are not sent" in f for f in status.findings), status.findings
    assert report.altered == [] and sent.state == "accepted", report
    assert delayed.uid in {d["uid"] for d in stack.provider_documents()}
    doctor = check_database(config)
    assert "payloads altered" not in doctor.detail, doctor
