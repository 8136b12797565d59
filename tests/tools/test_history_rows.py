"""The history `bench --history` writes is what the daemon writes: a cash sale and a card sale
(sign, terminal, issue) through the real daemon and the sandbox leave the same journal events, in
the same order, and the same columns set in every table as `history_receipt` does for the same
kinds of receipt. Without this, the sizes and query costs measured on the history could be about
rows the daemon never writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import offline_store as store
from agent.clock import athens_now
from agent.config import load_config
from agent.tools.history import history_receipt, history_request
from agent.tools.local_stack import post_json
from tests.e2e.stack import quiet_settings, running_stack, wait_for

pytestmark = pytest.mark.e2e

TABLES = ("documents", "payment_signatures", "api_requests", "print_jobs")


def _shape(conn: sqlite3.Connection, document_id: int) -> dict[str, object]:
    """What a receipt left: its journal events in order and, per table, the columns set."""
    events = [
        row[0]
        for row in conn.execute(
            "SELECT event FROM journal WHERE document_id = ? ORDER BY seq", (document_id,)
        )
    ]
    shape: dict[str, object] = {"journal": events}
    for table in TABLES:
        key = "id" if table == "documents" else "document_id"
        rows = conn.execute(
            f"SELECT * FROM {table} WHERE {key} = ?",  # noqa: S608
            (document_id,),
        ).fetchall()
        shape[table] = [_set_columns(row) for row in rows]
    return shape


def _set_columns(row: sqlite3.Row) -> list[str]:
    """The columns a row has a value in (a sqlite3.Row iterates over values, not names)."""
    names: list[str] = row.keys()
    return sorted(name for name in names if row[name] not in (None, ""))


def _sell(client: object, index: int) -> int:
    """Receipt `index` of the history, sold through the local API as a till does."""
    body = history_request(index).model_dump(mode="json", exclude_none=True)
    payment = body["payments"][0]
    if payment["method"] == 7:
        signed = post_json(
            client,  # type: ignore[arg-type]
            "/v1/payments/sign",
            {
                "request_id": f"sign-{index}",
                "terminal_id": payment["terminal_id"],
                "amount": payment["amount"],
                "document_type": "11.1",
                "lines": body["lines"],
            },
        )
        assert signed.status_code == 201, signed.text
        payment["signature_id"] = signed.json()["signature_id"]
    issued = post_json(client, "/v1/receipts", body)  # type: ignore[arg-type]
    assert issued.status_code == 201, issued.text
    assert issued.json()["state"] == "accepted"
    return int(issued.json()["receipt_id"])


def test_history_rows_are_the_rows_the_daemon_writes(tmp_path: Path) -> None:
    with running_stack(tmp_path / "live", quiet_settings()) as stack, stack.client() as client:
        sold = {index: _sell(client, index) for index in (0, 1)}  # card, cash
        db = stack.open_store()
        try:
            wait_for(
                lambda: store.print_queue_summary(db)["printed"] == 2,
                timeout_s=20,
                what="both receipts printed",
            )
            daemon = {index: _shape(db, doc_id) for index, doc_id in sold.items()}
        finally:
            db.close()
        config = load_config(stack.config_path)

    scratch = store.open_database(tmp_path / "history.sqlite3")
    try:
        written = {}
        with store.transaction(scratch):
            for index in (0, 1):
                doc = history_receipt(scratch, config, index, athens_now())
                written[index] = _shape(scratch, doc.id)
    finally:
        scratch.close()

    assert daemon[0]["payment_signatures"], "the card sale was signed"
    assert daemon[1]["payment_signatures"] == []
    assert written == daemon
