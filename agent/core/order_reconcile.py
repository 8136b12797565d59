"""The provider's open order slips (8.6) against the tables this register holds open.

An 8.6 the provider holds open blocks the merchant once it is `tables.open_order_limit_hours`
old, whether or not this register still knows it (a store restored from a backup, a table the
register thinks closed, another till using the same key). The provider's list of open order
slips (docs/provider.md §15) is paged through first (nothing is written while it is read); then,
in the caller's transaction, each listed order is matched by MARK, else by UID or internal id:
- open here with the same MARK: matched;
- open here, accepted without a known MARK: it takes the listed MARK (journaled): resolved;
- open here but not yet at the provider, or closed/cancelled here by a document not yet at the
  provider (a cancellation of an unheld order included): on its way, the sync sends it now:
  resent;
- anything else: unheld, for a person, with its table, MARK, age and deadline; the way out is
  an 8.6 cancellation of that MARK (`ProviderOrders.cancel`), after which the items may be
  placed again on the table and the table closed as usual.
An order open here that the provider does not list is resent when it never reached the
provider, else flagged (the provider closed or cancelled it with a document this register
lacks, or lost it).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

import offline_store as store
from agent.core.day_report import OrderReconciliation, UnheldOrder
from agent.core.runtime import Runtime
from agent.elise.outcomes import (
    AadeDown,
    ListedOrder,
    OrderPage,
    Rejected,
    Unauthorized,
    Unreachable,
)
from agent.fiscal.orders import ORDER_TYPE, SlipCancellation

log = logging.getLogger("pos_agent.reconcile")

# A provider that keeps naming a next page holds no register's open orders: stop and say so.
MAX_PAGES = 50
_ON_ITS_WAY = frozenset({store.DocumentState.PENDING, store.DocumentState.DELAYED})


@dataclass
class _Tally:
    matched: int = 0
    resolved: int = 0
    resent: int = 0
    flagged: list[str] = field(default_factory=list)
    unheld: list[UnheldOrder] = field(default_factory=list)


async def provider_open_orders(rt: Runtime) -> list[ListedOrder] | str:
    """Every page of the provider's open order slips, or why they could not be read."""
    orders: list[ListedOrder] = []
    page: int | None = 1
    while page is not None:
        if page > MAX_PAGES:
            return f"the provider's open orders did not end after {MAX_PAGES} pages"
        match await rt.client.list_open_orders(page):
            case OrderPage(orders=found, next_page=following):
                orders += found
                page = following if found else None
            case Unreachable() | AadeDown() | Unauthorized() | Rejected() as failure:
                return unread(failure, "the open orders")
    return orders


def unread(failure: Unreachable | AadeDown | Unauthorized | Rejected, what: str) -> str:
    """Why a list of the provider's (`what`) could not be read, as a reconciliation keeps it."""
    match failure:
        case Unreachable(reason=reason):
            return f"the provider could not be reached: {reason}"
        case AadeDown(message=message):
            return f"the provider could not answer: {message}"
        case Unauthorized(message=message):
            return f"the provider refused the credentials: {message}"
        case Rejected(status=status, messages=messages):
            return f"the provider refused {what} (HTTP {status}): {'; '.join(messages)}"


def failed_orders(error: str, now: datetime) -> OrderReconciliation:
    return OrderReconciliation(
        provider_open=0,
        matched=0,
        resolved=0,
        resent=0,
        flagged=[],
        unheld=[],
        error=error,
        checked_at=now,
    )


def match_orders(rt: Runtime, listed: list[ListedOrder], now: datetime) -> OrderReconciliation:
    """In the caller's transaction: the listed open orders against the open tables."""
    conn = rt.conn
    held = store.open_orders(conn)
    by_mark = {order.mark: order for order in held if order.mark is not None}
    unmarked = [store.get_document(conn, o.document_id) for o in held if o.mark is None]
    by_ident: dict[str, store.StoredDocument] = {}
    for doc in unmarked:
        if doc is not None:
            by_ident[doc.uid.upper()] = by_ident[doc.internal_id] = doc
    seen: set[int] = set()
    tally = _Tally()
    for entry in listed:
        if entry.mark is not None and entry.mark in by_mark:
            seen.add(by_mark[entry.mark].document_id)
            tally.matched += 1
            continue
        doc = by_ident.get((entry.uid or "").upper()) or by_ident.get(entry.internal_id or "")
        if doc is not None:
            seen.add(doc.id)
            _held_unmarked(conn, doc, entry, now, tally)
        else:
            _not_held(conn, entry, tally)
    for order in held:
        if order.document_id not in seen:
            _not_listed(order, tally)
    return OrderReconciliation(
        provider_open=len(listed),
        matched=tally.matched,
        resolved=tally.resolved,
        resent=tally.resent,
        flagged=tally.flagged,
        unheld=tally.unheld,
        checked_at=now,
    )


def _held_unmarked(
    conn: sqlite3.Connection,
    doc: store.StoredDocument,
    entry: ListedOrder,
    now: datetime,
    tally: _Tally,
) -> None:
    """An open order here without a MARK that the provider lists: its MARK is taken when it
    was accepted without one; otherwise it is still on its way (the sync's answer gives it)."""
    if doc.state is store.DocumentState.ACCEPTED and doc.mark_unknown and entry.mark is not None:
        store.resolve_mark(conn, doc.id, entry.mark, now=now)
        tally.resolved += 1
    else:
        tally.resent += 1


def cancellation_on_its_way(conn: sqlite3.Connection, mark: int) -> store.StoredDocument | None:
    """An 8.6 cancelling `mark` that has not reached the provider yet (pending or delayed: a
    bounded set, the backlog), if any."""
    for document_id in store.unsent_ids_of_types(conn, [ORDER_TYPE]):
        doc = store.get_document(conn, document_id)
        if (
            doc is not None
            and doc.payload
            and SlipCancellation.of_payload(doc.payload).cancels(mark)
        ):
            return doc
    return None


def _not_held(conn: sqlite3.Connection, entry: ListedOrder, tally: _Tally) -> None:
    """Open at the provider, not here: on its way when the document that closed or cancelled
    it here has not reached the provider yet; otherwise unheld, for a person. The slip is
    ours when its internal id is, else when its MARK is (a list whose internal id is missing
    or not one of ours still names our slip by the MARK the provider gave it)."""
    if entry.mark is not None and cancellation_on_its_way(conn, entry.mark) is not None:
        tally.resent += 1
        return
    known = store.get_by_internal_id(conn, entry.internal_id) if entry.internal_id else None
    if known is None and entry.mark is not None:
        known = store.get_by_mark(conn, entry.mark)
    known_here = None
    if known is not None:
        by = store.order_settled_by(conn, known.request_id)
        settling = store.get_by_request_id(conn, by) if by else None
        if settling is not None and settling.state in _ON_ITS_WAY:
            tally.resent += 1
            return
        known_here = f"issued here as {known.series}/{known.number} (receipt {known.id}), " + (
            f"closed or cancelled here by receipt {settling.id} ({settling.state})"
            if settling is not None
            else f"{known.state} here"
        )
    if entry.mark is None:
        tally.flagged.append(
            f"the provider lists an open order slip without a usable MARK "
            f"(UID {entry.uid}, table {entry.table}): look it up in the provider's portal"
        )
        return
    log.warning("the provider holds order slip MARK %s open; no open table here does", entry.mark)
    tally.unheld.append(
        UnheldOrder(
            mark=entry.mark,
            table=entry.table,
            issued_at=entry.issued_at,
            total=entry.total,
            known_here=known_here,
        )
    )


def _not_listed(order: store.TableOrder, tally: _Tally) -> None:
    if order.state in _ON_ITS_WAY:
        tally.resent += 1
        return
    tally.flagged.append(
        f"order {order.document_id} of table {order.table_id} ({order.series}/{order.number}, "
        f"MARK {order.mark}) is open here but not at the provider: it was closed or cancelled "
        "there by a document this register lacks, or the provider lost it; compare with the "
        "provider's portal before closing the table (the provider refuses a receipt that "
        "connects an order it does not hold open)"
    )
