"""`pos-agent status` on a café register: an order slip older than the legal limit (24 h) makes
the live daemon's status CRITICAL, names the table, and shows in `/metrics`. The order is seeded
with an old issue time before the daemon opens the database, as the daemon would have left it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import offline_store as store
from agent.clock import ATHENS
from agent.json_codec import dumps
from agent.tools.local_stack import LocalStack
from tests.commands.test_status import fast_settings, run_cli

pytestmark = pytest.mark.e2e


def seed_order(database: Path, *, issued_at: datetime, table: str = "4") -> int:
    conn = store.open_database(database)
    now = datetime.now(ATHENS)
    request = {
        "request_id": "seed-order",
        "table": table,
        "waiter": "Ελένη",
        "kind": "order",
        "lines": [
            {"description": "Φρέντο", "quantity": "1", "unit_price": "3.50", "vat_category": 2}
        ],
    }
    try:
        with store.transaction(conn):
            doc = store.insert_document(
                conn,
                "ΔΠΕ",
                lambda number: store.NewDocument(
                    request_id="seed-order",
                    request_hash="seed",
                    kind=store.DocumentKind.RECEIPT,
                    type_code="8.6",
                    issued_at=issued_at,
                    uid=f"SEED-UID-{number}",
                    internal_id=f"8.6_ΔΠΕ_{number}",
                    request_json=dumps(request).decode("utf-8"),
                    total_amount=Decimal("3.50"),
                    payload=b'{"IsDelayedCode":0}',
                ),
                now=now,
            )
            store.mark_accepted(
                conn, doc.id, mark=400000000777001, authentication_code=None, qr_url=None, now=now
            )
            store.record_order(
                conn,
                request_id="seed-order",
                table_id=table,
                waiter="Ελένη",
                kind=store.OrderKind.ORDER,
                now=now,
            )
        return doc.id
    finally:
        conn.close()


@pytest.fixture
def old_order_stack(tmp_path: Path) -> Iterator[tuple[LocalStack, int]]:
    stack = LocalStack(tmp_path / "stack", fast_settings())
    stack.root.mkdir()
    stack.start_sandbox()
    stack.write_config()
    stack.state_dir.mkdir(parents=True)
    issued = datetime.now(ATHENS) - timedelta(hours=25)
    order_id = seed_order(stack.state_dir / "pos-agent.sqlite3", issued_at=issued)
    stack.start_daemon()
    try:
        yield stack, order_id
    finally:
        stack.stop()


def test_an_order_past_the_legal_limit_makes_the_live_status_critical(
    old_order_stack: tuple[LocalStack, int], capsys: pytest.CaptureFixture[str]
) -> None:
    stack, order_id = old_order_stack
    code, out = run_cli(capsys, "status", "--config", str(stack.config_path))
    assert code == 2, out
    assert out.startswith("pos-agent status: CRITICAL") and "up, version" in out
    assert "1 open order(s) on 1 table(s)" in out
    assert f"order {order_id} of table 4, 1d 1h open (limit 24 h)" in out
    findings = out.split("Findings:")[1]
    assert "CRITICAL: order" in findings and "past the legal limit of 24 h" in findings
    with stack.client() as client:
        metrics = client.get("/metrics").text
    age = next(
        float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("pos_agent_oldest_open_order_age_seconds")
    )
    assert age >= 25 * 3600
    assert re.search(r"^pos_agent_open_orders(\{[^}]*\})? 1\.0$", metrics, re.M), metrics
