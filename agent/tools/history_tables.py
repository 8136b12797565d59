"""A table's history, written with the daemon's code: its order slips (8.6) and the receipt
that pays the whole table (an 11.1 of category 12 connecting every order's MARK).

The steps are the daemon's (core/orders.py, core/tables.py, through core/issuing.py): each order
slip numbered in its own series and frozen with its `table_orders` row, accepted and printed;
then the table's bill from those orders, the receipt frozen with the settlement of the orders,
accepted and printed. As in `history.py`, only the HTTP hop and the provider call are skipped,
and the journal closes a unit where the daemon commits. `tests/tools/test_history_rows.py`
compares the rows with a table sold through the daemon's socket.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import offline_store as store
from agent.config import AgentConfig
from agent.core.issuing import Draft, payment_entries
from agent.core.orders import order_slip_payload
from agent.core.request_identity import CanonicalRequest, canonical, canonical_call
from agent.core.tables import (
    plan_part,
    record_table_receipt,
    table_receipt_payload,
    table_receipt_record,
    table_state,
)
from agent.fiscal.document_builder import price_lines, series_for
from agent.fiscal.orders import ORDER_TYPE, CloseTableRequest, OrderRequest
from agent.fiscal.provider_payloads import DocumentIdentity
from agent.fiscal.receipt_model import TablePart
from agent.tools.history import accept_and_print, history_lines

ORDERS_PER_TABLE = 2
WAITER = "Μαρία"


def table_id(index: int) -> str:
    return f"T{index % 40}"


def order_request(index: int, slip: int) -> OrderRequest:
    """Order slip `slip` of table receipt `index`."""
    return OrderRequest.model_validate(
        {
            "request_id": f"order-{index:09d}-{slip}",
            "table": table_id(index),
            "waiter": WAITER,
            "lines": history_lines(index + slip),
        }
    )


def close_request(index: int, gross: object) -> CloseTableRequest:
    """The receipt that pays what is left of the table, in cash."""
    return CloseTableRequest.model_validate(
        {"request_id": f"close-{index:09d}", "payments": [{"method": 3, "amount": gross}]}
    )


def history_table(
    conn: sqlite3.Connection, config: AgentConfig, index: int, at: datetime
) -> store.StoredDocument:
    """Table receipt `index`: its order slips, then the receipt paying it; returns that
    receipt. In the caller's transaction."""
    for slip in range(ORDERS_PER_TABLE):
        _order_slip(conn, config, order_request(index, slip), at)
    table = table_id(index)
    state = table_state(conn, table)
    plan = plan_part(config, state, TablePart(table=table))
    request = close_request(index, plan.priced.totals.gross)
    identity = canonical_call(request, table=table)
    record = table_receipt_record(table, request, plan)
    stored = CanonicalRequest(record.model_dump_json(), identity.digest)
    draft = Draft(request.request_id, stored, plan.type_code, plan.priced.totals.gross)
    connected = [order.mark for order in state.orders if order.mark is not None]
    payments = payment_entries(request.payments, {})

    def build(doc_identity: DocumentIdentity) -> bytes:
        return table_receipt_payload(
            config, doc_identity, plan, payments, request, connected=connected, correlated=[]
        )

    series = series_for(config, plan.type_code)
    store.close_journal_unit(conn)
    doc = store.insert_document(
        conn,
        series,
        lambda number: draft.new_document(config, series, number, at, build=build),
        now=at,
    )
    record_table_receipt(conn, state, plan, request.request_id, doc)
    store.close_journal_unit(conn)
    return accept_and_print(conn, config, doc, at)


def _order_slip(
    conn: sqlite3.Connection, config: AgentConfig, request: OrderRequest, at: datetime
) -> store.StoredDocument:
    priced = price_lines(request.lines, prices_include_vat=config.pricing.prices_include_vat)
    draft = Draft(request.request_id, canonical(request), ORDER_TYPE, priced.totals.gross)
    series = series_for(config, ORDER_TYPE)
    store.close_journal_unit(conn)
    doc = store.insert_document(
        conn,
        series,
        lambda number: draft.new_document(
            config,
            series,
            number,
            at,
            build=lambda identity: order_slip_payload(config, identity, request, priced),
        ),
        now=at,
    )
    store.record_order(
        conn,
        request_id=request.request_id,
        table_id=request.table,
        waiter=request.waiter,
        kind=store.OrderKind.ORDER,
        now=doc.created_at,
    )
    store.close_journal_unit(conn)
    return accept_and_print(conn, config, doc, at)
