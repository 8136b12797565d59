"""Receipts sold through the daemon's socket as a till sells them, and what they cost on disk.

The history bench writes years of receipts with the daemon's store code (agent/tools/history.py)
because the HTTP hop and the provider call would make a million take days. This is its
calibration: the same receipts (`history_request`), sold through the Unix socket to a real
daemon and sandbox, one card sale in `card_every` signed first (`POST /v1/payments/sign`), every
receipt printed by the daemon's spool on a dummy printer; then the live file is measured table by
table, with the space left unused inside its pages. If the two figures differ, the history
writer no longer takes the daemon's path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import offline_store as store
from agent.tools.history import CARD_EVERY, history_request
from agent.tools.history_tables import ORDERS_PER_TABLE, close_request, order_request, table_id
from agent.tools.local_stack import LocalStack, StackSettings, post_json

RETRIES = 50


@dataclass(frozen=True)
class TableBytes:
    """A table's (or index's) pages and the bytes left unused inside them."""

    name: str
    bytes: int
    unused: int


def sell(client: httpx.Client, index: int, *, card_every: int = CARD_EVERY) -> int:
    """Receipt `index` of the history, sold through the local API as a till does (signed
    through the terminal first when it is a card sale); returns the receipt id."""
    body = history_request(index, card_every=card_every).model_dump(mode="json", exclude_none=True)
    payment = body["payments"][0]
    if payment["method"] == 7:
        signed = _post(
            client,
            "/v1/payments/sign",
            {
                "request_id": f"sign-{index:09d}",
                "terminal_id": payment["terminal_id"],
                "amount": payment["amount"],
                "document_type": "11.1",
                "lines": body["lines"],
            },
        )
        if not 200 <= signed.status_code < 300:
            raise RuntimeError(f"sign call refused: {signed.text[:300]}")
        payment["signature_id"] = signed.json()["signature_id"]
    issued = _post(client, "/v1/receipts", body)
    if not 200 <= issued.status_code < 300:  # 200: a retry answered from the first
        raise RuntimeError(f"receipt not issued: {issued.status_code} {issued.text[:300]}")
    return int(issued.json()["receipt_id"])


def sell_table(client: httpx.Client, index: int) -> list[int]:
    """Table receipt `index` of the history (agent/tools/history_tables.py) sold as a till
    does: its order slips, then the receipt paying what is left; returns the documents' ids
    (the slips', then the receipt's)."""
    ids = []
    for slip in range(ORDERS_PER_TABLE):
        body = order_request(index, slip).model_dump(mode="json", exclude_none=True)
        placed = _post(client, "/v1/orders", body)
        if not 200 <= placed.status_code < 300:
            raise RuntimeError(f"order not placed: {placed.status_code} {placed.text[:300]}")
        ids.append(int(placed.json()["receipt_id"]))
    table = table_id(index)
    left = client.get(f"/v1/tables/{table}").json()["left"]
    body = close_request(index, left).model_dump(mode="json", exclude_none=True)
    closed = _post(client, f"/v1/tables/{table}/close", body)
    if not 200 <= closed.status_code < 300:
        raise RuntimeError(f"table not closed: {closed.status_code} {closed.text[:300]}")
    return [*ids, int(closed.json()["receipt_id"])]


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    """As a till does: a request the storage could not take now (503: busy on a loaded
    machine) is sent again, the same request id."""
    for _ in range(RETRIES):
        response = post_json(client, path, body)
        if response.status_code != 503:
            return response
        time.sleep(0.2)
    return response


def table_bytes(path: Path) -> list[TableBytes]:
    """Every table and index of the store at `path` (checkpointed), biggest first, and the
    free pages as `(free pages)` (SQLite's dbstat)."""
    conn = store.open_database(path, read_only=True)
    try:
        rows = [
            TableBytes(name, size, unused)
            for name, size, unused in conn.execute(
                "SELECT name, sum(pgsize), sum(unused) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            )
        ]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    return [*rows, TableBytes("(free pages)", free * page, free * page)]


def per_receipt(tables: list[TableBytes], receipts: int) -> dict[str, dict[str, int]]:
    """Bytes per receipt by table (and the unused part), tables under 4 bytes a receipt left out."""
    return {
        t.name: {"bytes": round(t.bytes / receipts), "unused": round(t.unused / receipts)}
        for t in tables
        if t.bytes >= 4 * receipts
    }


def socket_sample(
    root: Path,
    count: int,
    *,
    card_every: int = CARD_EVERY,
    clients: int = 2,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Sell `count` receipts through the socket of a daemon on an empty store (`clients` tills
    at once), wait until all are printed and at the provider, stop the daemon and measure the
    file."""
    # Generous provider timeouts: on a loaded machine a 2 s read timeout sends a receipt
    # offline now and then, and it is then synced a few seconds later.
    settings = StackSettings(
        printer_backend="dummy",
        preview_dir=False,
        sync_interval_s=5.0,
        connect_timeout_s=5.0,
        read_timeout_s=10.0,
        total_timeout_s=15.0,
    )
    stack = LocalStack(root, settings)
    t0 = time.perf_counter()
    with stack:
        _sell_all(stack, count, card_every, clients, log)
        conn = stack.open_store()
        try:
            while store.print_queue_summary(conn)["printed"] < count or stack.unsent_count():
                time.sleep(0.2)
        finally:
            conn.close()
        stack.stop_daemon()
    checkpointed = store.open_database(stack.database_path, check=False)
    checkpointed.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close_database(checkpointed)
    size = store.database_size_bytes(stack.database_path)
    return {
        "receipts": count,
        "card_every": card_every,
        "clients": clients,
        "seconds": round(time.perf_counter() - t0, 1),
        "bytes": size,
        "bytes_per_receipt": round(size / count),
        "by_table": per_receipt(table_bytes(stack.database_path), count),
    }


def _sell_all(
    stack: LocalStack, count: int, card_every: int, clients: int, log: Callable[[str], None]
) -> None:
    errors: list[BaseException] = []
    sold = [0]
    lock = threading.Lock()

    def till(first: int) -> None:
        try:
            with stack.client(timeout_s=60) as client:
                for index in range(first, count, clients):
                    sell(client, index, card_every=card_every)
                    with lock:
                        sold[0] += 1
                        if sold[0] % 5000 == 0:
                            log(f"  socket sample: {sold[0]} receipts sold")
        except BaseException as error:  # reported by the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=till, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


__all__ = ["TableBytes", "per_receipt", "sell", "sell_table", "socket_sample", "table_bytes"]
