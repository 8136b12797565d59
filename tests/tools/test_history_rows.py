"""The history `bench --history` writes is what the daemon writes: a cash sale and a card sale
(sign, terminal, issue, printed), and a table (two order slips, the receipt paying it) sold
through the real daemon's socket and the sandbox leave, in every table (the journal, documents,
signatures, remembered answers, print jobs and their layouts, the table's orders), the same rows with the same columns at the same size in bytes as `history_receipt`
writes for the same receipts. Without this, the sizes and query costs measured on the history
could be about rows the daemon never writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import offline_store as store
from agent.clock import athens_now
from agent.config import load_config
from agent.tools.history import history_receipt
from agent.tools.history_tables import history_table, table_id
from agent.tools.socket_sample import sell, sell_table
from tests.e2e.stack import quiet_settings, running_stack, wait_for

pytestmark = pytest.mark.e2e

TABLES = ("documents", "payment_signatures", "api_requests", "print_jobs", "print_layouts")
# Deflate's output: the same bytes in a different order (the provider's real signature in the
# daemon's payload, a stand-in of the same length in the history's) pack a few bytes longer or
# shorter. Every other column must match to the byte.
PACKED = {"payload", "request_packed", "response_packed"}
PACKED_SLACK = 12
# An ECDSA P-256 signature in DER is 70 to 72 bytes (the provider's, the history's stand-in).
SLACK = {"signature_raw": 2} | dict.fromkeys(PACKED, PACKED_SLACK)
# A job printed in the second it was queued keeps `printed_at` '' (the history's always are); the
# daemon's spool may print in the next second on a busy machine.
SAME_SECOND = {"printed_at": {("text", 0), ("text", 25)}}


def _shape(conn: sqlite3.Connection, document_id: int) -> dict[str, object]:
    """What a receipt left, in every table: per row, each column's storage class and size in
    bytes (SQLite's record format: an integer takes 0-8 bytes by its value), and the journal's
    entries in order with the same shapes."""
    shape: dict[str, object] = {
        "journal": [
            _row_shape(row)
            for row in conn.execute(
                "SELECT * FROM journal WHERE document_id = ? ORDER BY seq", (document_id,)
            )
        ]
    }
    for table in TABLES:
        if table == "print_layouts":
            sql = "SELECT l.* FROM print_layouts l JOIN print_jobs j ON j.id = l.job_id "
            sql += "WHERE j.document_id = ?"
        else:
            key = "id" if table == "documents" else "document_id"
            sql = f"SELECT * FROM {table} WHERE {key} = ?"  # noqa: S608
        shape[table] = [_row_shape(row) for row in conn.execute(sql, (document_id,))]
    return shape


def _row_shape(row: sqlite3.Row) -> dict[str, tuple[str, int]]:
    names: list[str] = row.keys()
    return {name: _value_shape(row[name]) for name in names if name not in ("seq", "id")}


def _value_shape(value: object) -> tuple[str, int]:
    if value is None:
        return ("null", 0)
    if isinstance(value, bool | int):
        return ("integer", _integer_bytes(int(value)))
    if isinstance(value, float):
        return ("real", 8)
    if isinstance(value, bytes):
        return ("blob", len(value))
    return ("text", len(str(value).encode("utf-8")))


def _integer_bytes(value: int) -> int:
    """The bytes SQLite's record format gives an integer (0 and 1 take none)."""
    if value in (0, 1):
        return 0
    for size in (1, 2, 3, 4, 6):
        if -(1 << (8 * size - 1)) <= value < (1 << (8 * size - 1)):
            return size
    return 8


def _same_shapes(daemon: dict[str, object], written: dict[str, object]) -> list[str]:
    """Where the history's rows differ from the daemon's (empty: none)."""
    problems = []
    for table, rows in daemon.items():
        theirs = written[table]
        assert isinstance(rows, list) and isinstance(theirs, list)
        if len(rows) != len(theirs):
            problems.append(f"{table}: {len(rows)} rows by the daemon, {len(theirs)} by history")
            continue
        for n, (row, other) in enumerate(zip(rows, theirs, strict=True)):
            for column, (kind, size) in row.items():
                their_kind, their_size = other[column]
                slack = SLACK.get(column, 0)
                either = SAME_SECOND.get(column, set())
                if {(kind, size), (their_kind, their_size)} <= either:
                    continue
                if kind != their_kind or abs(size - their_size) > slack:
                    problems.append(
                        f"{table}[{n}].{column}: daemon {kind} {size} bytes, "
                        f"history {their_kind} {their_size} bytes"
                    )
    return problems


def test_history_rows_are_the_rows_the_daemon_writes(tmp_path: Path) -> None:
    with running_stack(tmp_path / "live", quiet_settings()) as stack, stack.client() as client:
        sold = {index: sell(client, index) for index in (0, 1)}  # card, cash
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
    assert [f"receipt {i}: {p}" for i in (0, 1) for p in _same_shapes(daemon[i], written[i])] == []


def _table_orders(conn: sqlite3.Connection, table: str) -> list[dict[str, tuple[str, int]]]:
    return [
        _row_shape(row)
        for row in conn.execute(
            "SELECT * FROM table_orders WHERE table_id = ? ORDER BY request_id", (table,)
        )
    ]


def test_a_tables_history_rows_are_the_rows_the_daemon_writes(tmp_path: Path) -> None:
    index = 3
    with running_stack(tmp_path / "live", quiet_settings()) as stack, stack.client() as client:
        sold = sell_table(client, index)
        db = stack.open_store()
        try:
            wait_for(
                lambda: store.print_queue_summary(db)["printed"] == len(sold),
                timeout_s=20,
                what="the order slips and the receipt printed",
            )
            daemon = [_shape(db, doc_id) for doc_id in sold]
            daemon_orders = _table_orders(db, table_id(index))
        finally:
            db.close()
        config = load_config(stack.config_path)

    scratch = store.open_database(tmp_path / "history.sqlite3")
    try:
        with store.transaction(scratch):
            receipt = history_table(scratch, config, index, athens_now())
        written = [_shape(scratch, doc_id) for doc_id in range(1, receipt.id + 1)]
        written_orders = _table_orders(scratch, table_id(index))
    finally:
        scratch.close()

    assert len(written) == len(daemon) == 3
    assert (
        daemon_orders
        and [row["close_request_id"] for row in daemon_orders]
        == [("text", len(f"close-{index:09d}"))] * 2
    )
    assert [
        f"document {i}: {p}" for i in range(3) for p in _same_shapes(daemon[i], written[i])
    ] == []
    assert _same_shapes({"table_orders": daemon_orders}, {"table_orders": written_orders}) == []
