"""Send one frozen document to the provider and record what happened.

Used for the first send (from the till's request) and by the sync. The payload bytes are never
rebuilt: a delayed document goes out with only `IsDelayedCode` changed. Every outcome is written
in one transaction together with its journal entry (the store journals each transition).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import offline_store as store
from agent.core.errors import PayloadAltered
from agent.core.offline_documents import offline_qr_for
from agent.core.print_orders import queue_print, wants_print
from agent.core.provider_health import AADE_DOWN_CODE, UNREACHABLE_CODE, note_outcome
from agent.core.returns import payload_to_send
from agent.core.runtime import Runtime
from agent.elise.outcomes import (
    AadeDown,
    Accepted,
    Duplicate,
    Rejected,
    SendOutcome,
    Unauthorized,
    Unreachable,
)
from agent.fiscal.deadlines import transmission_deadline
from agent.fiscal.provider_payloads import set_delayed_code
from agent.fiscal.receipt_model import Delivery

log = logging.getLogger("pos_agent.transmission")

AfterOutcome = Callable[[store.StoredDocument], object]


@dataclass(frozen=True)
class Sent:
    """A provider call's outcome and the breaker generation it went out in (see breaker)."""

    outcome: SendOutcome
    sent_in: int


def retry_delay(attempts: int, *, base_s: float, max_s: float) -> timedelta:
    """Exponential backoff with full jitter, so a fleet of registers does not retry in step."""
    ceiling = min(max_s, base_s * (2 ** min(attempts, 16)))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _not_ours(doc: store.StoredDocument, outcome: Duplicate, *, first: bool) -> str | None:
    """Why the document the provider already holds under this UID is another sale, or None.

    On the first send of a document frozen a moment ago, nothing of ours can be at the provider
    yet: the UID (series and number) was used before, by a sale this database no longer holds
    (a rolled-back database). Adopting that MARK would give this sale another sale's MARK, so
    the document is flagged for a person instead (state `rejected`, CRITICAL in status). Later
    sends may legitimately meet their own earlier send; there the answer's own identity
    fields, when it carries them, must be ours."""
    if first:
        return (
            f"the provider already holds another document with this UID ({doc.uid}, MARK "
            f"{outcome.mark}) although this one was never sent: the database has probably gone "
            "back in time and reused the number. Not adopted; a person must check (pos-agent "
            "status)"
        )
    answered_uid = outcome.raw.get("uid")
    if isinstance(answered_uid, str) and answered_uid and answered_uid.upper() != doc.uid.upper():
        return (
            f"the provider's duplicate answer names UID {answered_uid}, not this document's "
            f"{doc.uid}: MARK {outcome.mark} is not adopted; a person must check"
        )
    return None


class Transmitter:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        # Provider answers the storage refused to record, by document id: the next send of the
        # document returns the answer instead of calling the provider again.
        self.unrecorded_outcomes: dict[int, Sent] = {}
        # Documents on their way to the provider right now (a sale waiting for its answer, or
        # the sync's): the sync skips them, health counts them for `pos-agent update`.
        self.in_flight: set[int] = set()
        # Built once: the payload check runs before every send, and a Path per call was 2 % of
        # a sale's CPU.
        self._archive_dir = runtime.config.archive_dir

    def payload_intact(self, doc: store.StoredDocument) -> bool:
        """The payload about to go out is the one frozen (its journaled SHA-256; the archive
        holds it once archived), checked before every send."""
        return store.payload_intact(
            self.rt.conn, doc.id, doc.payload, archive_dir=self._archive_dir
        )

    async def transmit(
        self, doc: store.StoredDocument, *, then: AfterOutcome | None = None
    ) -> store.StoredDocument:
        """The first send of a document just issued; with the breaker open, offline at once.

        `then` runs inside the transaction that records the outcome (the print job of a new
        receipt), so one fsync covers both, unless the provider rejected the document."""
        rt = self.rt
        if not self.payload_intact(doc):
            log.critical("document %s is not sent: %s", doc.id, PayloadAltered.WHAT)
            raise PayloadAltered(f"receipt {doc.id} is not sent: {PayloadAltered.WHAT}")
        if rt.breaker.is_open:
            rt.metrics.receipts.labels(
                doc.type_code, "breaker_open"
            ).inc()  # issued too, without a send
            return self._go_offline(
                doc, rt.breaker.delayed_code, "provider unavailable (breaker open)", then
            )
        sent = await self.send(doc)
        try:
            return self._apply(doc, sent, first=True, then=then)
        except Exception as exc:
            self._remember_if_unwritten(doc, sent, exc)
            raise

    def hold(
        self,
        doc: store.StoredDocument,
        original: store.StoredDocument,
        *,
        then: AfterOutcome | None = None,
    ) -> store.StoredDocument:
        """A return whose original has no MARK yet is not sent: offline at once with the
        original's IsDelayedCode (the reason it cannot go out), its own offline QR and, through
        `then`, its print job (`agent.core.returns` states the order)."""
        code = original.delayed_code or UNREACHABLE_CODE
        reason = (
            f"waiting for its original {original.series}/{original.number} (receipt "
            f"{original.id}) to be accepted: it is sent with the original's MARK"
        )
        return self._go_offline(doc, code, reason, then)

    def hold_unsent(
        self, doc: store.StoredDocument, original: store.StoredDocument
    ) -> store.StoredDocument:
        """A held return still `pending` (a crash between freezing and holding it) is held
        now, with the print job it never got."""
        if doc.state != store.DocumentState.PENDING:
            return doc
        missing = self._missing_print(doc)
        held = self.hold(doc, original, then=missing)
        if missing is not None:
            self.rt.notify_printer()
        return held

    async def send(self, doc: store.StoredDocument) -> Sent:
        """The provider call alone. The sync records its outcome apart (`record`), so it can
        send its next document first."""
        remembered = self.unrecorded_outcomes.pop(doc.id, None)
        if remembered is not None:
            return remembered  # the provider answered before; its answer waits to be written
        self.in_flight.add(doc.id)
        sent_in = self.rt.breaker.generation
        try:
            return Sent(await self._send(doc), sent_in)
        finally:
            self.in_flight.discard(doc.id)

    def record(self, doc: store.StoredDocument, sent: Sent) -> store.StoredDocument:
        """A sync's outcome: the breaker and the document's state. A `pending` document whose
        first outcome was never written (a crash or a refused write between its send and the
        record) has no print job yet: it is queued with this outcome, so the receipt the
        provider holds is printed too."""
        missing = self._missing_print(doc)
        try:
            recorded = self._apply(doc, sent, first=False, then=missing)
        except Exception as exc:
            self._remember_if_unwritten(doc, sent, exc)
            raise
        if missing is not None:
            self.rt.notify_printer()
        return recorded

    def _remember_if_unwritten(self, doc: store.StoredDocument, sent: Sent, exc: Exception) -> None:
        """The provider answered but the storage refused the outcome: keep the answer (with its
        authentication code and QR, which a later 409 would not carry) for the next sync,
        which writes it with the print job instead of sending again. Lost with the process;
        then the re-send and its 409 recover the MARK."""
        if store.storage_fault(exc) is not None and isinstance(
            sent.outcome, Accepted | Duplicate | Rejected
        ):
            self.unrecorded_outcomes[doc.id] = sent

    def _missing_print(self, doc: store.StoredDocument) -> AfterOutcome | None:
        """Only a pending document can lack its print job: a delayed one got it offline."""
        rt = self.rt
        if doc.state != store.DocumentState.PENDING or store.print_jobs_for(rt.conn, doc.id):
            return None
        delivery = Delivery.of_stored_request(doc.request_json)
        if not wants_print(rt, delivery):
            return None
        return lambda issued: queue_print(rt, issued, copy=False)

    async def _send(self, doc: store.StoredDocument) -> SendOutcome:
        payload = payload_to_send(self.rt.conn, doc)
        if doc.delayed_code:
            payload = set_delayed_code(payload, doc.delayed_code)
        client = self.rt.client
        if doc.kind == store.DocumentKind.POS_RECEIPT:
            endpoint, send = "receipt", client.send_receipt
        else:
            endpoint, send = "invoice", client.send_invoice
        started = time.perf_counter()
        outcome = await send(payload)
        self.rt.metrics.provider_latency.labels(endpoint).observe(time.perf_counter() - started)
        return outcome

    def _commit(
        self,
        change: Callable[[], store.StoredDocument],
        then: AfterOutcome | None,
        *,
        fsync: bool = True,
    ) -> store.StoredDocument:
        with store.transaction(self.rt.conn, fsync=fsync):
            doc = change()
            if then is not None and doc.state != store.DocumentState.REJECTED:
                then(doc)
        return doc

    def _apply(
        self,
        doc: store.StoredDocument,
        sent: Sent,
        *,
        first: bool,
        then: AfterOutcome | None,
    ) -> store.StoredDocument:
        rt = self.rt
        outcome = sent.outcome
        now = rt.clock()
        label = type(outcome).__name__.lower()
        if first:
            rt.metrics.receipts.labels(doc.type_code, label).inc()
        else:
            rt.metrics.synced.labels(label).inc()
        note_outcome(rt, outcome, sent.sent_in)
        accept = partial(store.mark_accepted, rt.conn, doc.id, now=now)
        change: Callable[[], store.StoredDocument]
        match outcome:
            case Accepted() if outcome.uid and outcome.uid.upper() != doc.uid.upper():
                reason = (
                    f"the provider accepted it but answered with UID {outcome.uid}, not this "
                    f"document's {doc.uid}: MARK {outcome.mark} is not adopted; a person must "
                    "check the document in the provider's portal"
                )
                log.critical("document %s: %s", doc.id, reason)
                change = partial(store.mark_rejected, rt.conn, doc.id, error=reason, now=now)
            case Accepted():
                change = partial(
                    accept,
                    mark=outcome.mark,
                    authentication_code=outcome.authentication_code,
                    qr_url=outcome.qr_url,
                )
            case Duplicate() if (foreign := _not_ours(doc, outcome, first=first)) is not None:
                log.critical("document %s: %s", doc.id, foreign)
                change = partial(store.mark_rejected, rt.conn, doc.id, error=foreign, now=now)
            case Duplicate():
                log.info(
                    "document %s already at the provider; adopting MARK %s", doc.id, outcome.mark
                )
                change = partial(accept, mark=outcome.mark, authentication_code=None, qr_url=None)
            case Rejected():
                message = "; ".join(outcome.messages) or f"HTTP {outcome.status}"
                log.warning("document %s rejected by the provider: %s", doc.id, message)
                change = partial(
                    store.mark_rejected, rt.conn, doc.id, error=message[:2000], now=now
                )
            case AadeDown():
                return self._go_offline(
                    doc, AADE_DOWN_CODE, f"AADE unavailable: {outcome.message}", then
                )
            case Unauthorized():
                return self._go_offline(
                    doc, UNREACHABLE_CODE, f"unauthorized: {outcome.message}", then
                )
            case Unreachable():
                return self._go_offline(
                    doc, UNREACHABLE_CODE, f"unreachable: {outcome.reason}", then
                )
            case _:
                raise TypeError(f"unexpected provider outcome {outcome!r}")
        # What the till is told is on disk before it is told. A sync's final outcome is not
        # fsynced: the provider keeps it, so a power cut can only make us send the document
        # again, and the provider answers 409 with the same MARK. Delayed stays durable: its
        # IsDelayedCode and offline QR must never be lost.
        return self._commit(change, then, fsync=first)

    def _go_offline(
        self,
        doc: store.StoredDocument,
        code: int,
        reason: str,
        then: AfterOutcome | None = None,
    ) -> store.StoredDocument:
        """First failure fixes the delayed code; later failures keep it (408 keeps 2, network 1)."""
        rt = self.rt
        now = rt.clock()
        delayed_code = doc.delayed_code or code
        due_at = doc.due_at or transmission_deadline(doc.issued_at)
        next_attempt = now + retry_delay(
            doc.attempts, base_s=rt.config.sync.backoff_base_s, max_s=rt.config.sync.backoff_max_s
        )

        def record() -> store.StoredDocument:
            return store.mark_delayed(
                rt.conn,
                doc.id,
                code=delayed_code,
                due_at=due_at,
                next_attempt_at=next_attempt,
                error=reason[:2000],
                now=now,
                offline_qr_url=None if doc.offline_qr_url else offline_qr_for(rt, doc),
            )

        return self._commit(record, then)
