"""Reconciliation: the day's documents against the list the provider holds (docs/provider.md §14).

The provider's list for the day is paged through first (nothing is written while it is read);
then, in one transaction, each of the day's documents is matched by UID, else by internal id:
- accepted here and listed with the same MARK and total: matched;
- accepted here without a known MARK and listed: it takes the listed MARK (journaled);
- accepted here and not listed: it goes back to the send queue (journaled), and the sync sends
  the same frozen bytes again at once; the provider's answer records the MARK;
- listed with another MARK or total, or listed but never issued here: flagged for a person.
Documents still on their way (pending, delayed) are left to the sync. The provider's open order
slips are matched against the open tables in the same transaction (`order_reconcile.py`). The
result is kept (the last one for `status` and `/metrics`, and beside the closing it followed)
and returned. A failed listing changes nothing and says why.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

import offline_store as store
from agent.core.day_report import OrderReconciliation, Reconciliation
from agent.core.order_reconcile import failed_orders, match_orders, provider_open_orders, unread
from agent.core.runtime import Runtime
from agent.core.sync import SyncService
from agent.elise.outcomes import (
    AadeDown,
    DocumentPage,
    ListedDocument,
    ListedOrder,
    Rejected,
    Unauthorized,
    Unreachable,
)
from agent.json_codec import dumps, loads

log = logging.getLogger("pos_agent.reconcile")
Day = date  # the request field is named `date`

# A provider that keeps naming a next page cannot hold a day's receipts: stop and say so.
MAX_PAGES = 200


class ReconcileRequest(BaseModel):
    """POST /v1/reconcile: match a day (today when `date` is left out) with the provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    day: Day | None = Field(None, alias="date", description="YYYY-MM-DD")


class ReconcileService:
    def __init__(self, runtime: Runtime, sync: SyncService) -> None:
        self.rt = runtime
        self.sync = sync

    async def run(self, day: date, *, closing: int | None = None) -> Reconciliation:
        """Match `day`, and (a food-service register) the provider's open order slips now;
        `closing`: the number of the closing it follows (kept beside it)."""
        listed = await self._provider_list(day)
        open_orders = await self._provider_orders()
        now = self.rt.clock()
        if isinstance(listed, str):
            log.warning("reconciliation of %s failed: %s", day, listed)
        with store.transaction(self.rt.conn):
            orders = self._match_orders(open_orders, now)
            result = (
                self._failed(day, listed, now)
                if isinstance(listed, str)
                else self._match(day, listed, now)
            ).model_copy(update={"orders": orders})
            self._keep(result, closing, now)
        if result.resent or (orders is not None and orders.resent):
            await self.sync.run(ignore_backoff=True)
        return result

    async def check_open_orders(self) -> Reconciliation | None:
        """A food-service register's periodic look (`closing.open_orders_check_s`): the
        provider's open order slips against the open tables, kept in place of the last
        result's; the first time, a whole reconciliation of today. None elsewhere."""
        if not self.rt.config.terminal.food_service:
            return None
        if self.last() is None:
            return await self.run(self.rt.clock().date())
        return await self.refresh_orders()

    async def refresh_orders(self) -> Reconciliation | None:
        """The provider's open order slips again, kept in place of the last result's (after a
        person cleared one); None when no reconciliation ran yet."""
        last = self.last()
        open_orders = await self._provider_orders()
        if last is None or open_orders is None:
            return last
        now = self.rt.clock()
        with store.transaction(self.rt.conn):
            orders = self._match_orders(open_orders, now)
            result = last.model_copy(update={"orders": orders})
            self._keep(result, None, now)
        if orders is not None and orders.resent:
            await self.sync.run(ignore_backoff=True)
        return result

    async def _provider_orders(self) -> list[ListedOrder] | str | None:
        """The provider's open order slips on a food-service register (None elsewhere: a shop
        without tables has none, and the endpoint's shape is an assumption, §15)."""
        if not self.rt.config.terminal.food_service:
            return None
        return await provider_open_orders(self.rt)

    def _match_orders(
        self, listed: list[ListedOrder] | str | None, now: datetime
    ) -> OrderReconciliation | None:
        if listed is None:
            return None
        if isinstance(listed, str):
            log.warning("the provider's open order slips could not be read: %s", listed)
            return failed_orders(listed, now)
        return match_orders(self.rt, listed, now)

    @staticmethod
    def _failed(day: date, error: str, now: datetime) -> Reconciliation:
        return Reconciliation(
            day=day,
            checked_at=now,
            provider_documents=0,
            matched=0,
            resolved=0,
            resent=0,
            flagged=[],
            error=error,
        )

    def last(self) -> Reconciliation | None:
        text = store.last_reconciliation(self.rt.conn)
        return None if text is None else Reconciliation.model_validate(loads(text))

    def _keep(self, result: Reconciliation, closing: int | None, now: datetime) -> None:
        text = dumps(result.model_dump(mode="json")).decode()
        store.remember_reconciliation(self.rt.conn, text)
        if closing is not None:
            store.record_reconciliation(self.rt.conn, closing, text, now=now)

    async def _provider_list(self, day: date) -> list[ListedDocument] | str:
        """Every page of the day, or why it could not be read."""
        documents: list[ListedDocument] = []
        page: int | None = 1
        while page is not None:
            if page > MAX_PAGES:
                return f"the provider's list did not end after {MAX_PAGES} pages"
            match await self.rt.client.list_documents(day, day, page):
                case DocumentPage(documents=found, next_page=following):
                    documents += found
                    page = following if found else None
                case Unreachable() | AadeDown() | Unauthorized() | Rejected() as failure:
                    return unread(failure, "the list")
        return documents

    def _match(self, day: date, listed: list[ListedDocument], now: datetime) -> Reconciliation:
        conn = self.rt.conn
        ids = store.day_range(conn, day, "documents")
        local = store.documents_between(conn, ids, day) if ids else []
        by_uid = {entry.uid.upper(): entry for entry in listed if entry.uid}
        by_internal = {entry.internal_id: entry for entry in listed if entry.internal_id}
        seen: set[int] = set()
        counts = {"matched": 0, "resolved": 0, "resent": 0}
        flagged: list[str] = []
        for doc in local:
            entry = by_uid.get(doc.uid.upper()) or by_internal.get(doc.internal_id)
            if entry is not None:
                seen.add(id(entry))
            outcome = self._one(doc, entry, now)
            if outcome in counts:
                counts[outcome] += 1
            elif outcome is not None:
                flagged.append(outcome)
        for entry in listed:
            if id(entry) not in seen and (problem := self._foreign(entry, now)) is not None:
                flagged.append(problem)
        return Reconciliation(
            day=day,
            checked_at=now,
            provider_documents=len(listed),
            matched=counts["matched"],
            resolved=counts["resolved"],
            resent=counts["resent"],
            flagged=flagged,
        )

    def _one(
        self, doc: store.StoredDocument, entry: ListedDocument | None, now: datetime
    ) -> str | None:
        """'matched', 'resolved', 'resent', None (nothing to say) or what a person must check."""
        name = f"receipt {doc.id} ({doc.type_code} {doc.series}/{doc.number})"
        if doc.state is store.DocumentState.REJECTED and entry is not None:
            return f"{name} is rejected here but the provider holds it (MARK {entry.mark})"
        if doc.state is not store.DocumentState.ACCEPTED:
            return None
        if entry is None:
            reason = "not in the provider's list of documents: sent again"
            store.requeue_for_resend(self.rt.conn, doc.id, reason=reason, now=now)
            log.warning("%s %s", name, reason)
            return "resent"
        if entry.total is not None and entry.total != doc.total_amount:
            return f"{name}: total {doc.total_amount} here, {entry.total} at the provider"
        if doc.mark_unknown:
            if entry.mark is None:
                return f"{name}: the provider's list gives no MARK either"
            store.resolve_mark(self.rt.conn, doc.id, entry.mark, now=now)
            return "resolved"
        if entry.mark is not None and entry.mark != doc.mark:
            return f"{name}: MARK {doc.mark} here, {entry.mark} at the provider"
        return "matched"

    def _foreign(self, entry: ListedDocument, now: datetime) -> str | None:
        """A listed document none of the day's matched: one issued here on another day (found
        by its internal id, checked the same way), or one never issued here."""
        doc = store.get_by_internal_id(self.rt.conn, entry.internal_id or "")
        if doc is not None and (entry.uid or "").upper() in ("", doc.uid.upper()):
            outcome = self._one(doc, entry, now)
            return None if outcome in (None, "matched", "resolved") else outcome
        return (
            f"the provider holds {entry.type_code or 'a document'} UID {entry.uid} MARK "
            f"{entry.mark} ({entry.internal_id}) that this register never issued"
        )
