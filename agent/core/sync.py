"""Backlog sync: oldest first, bounded concurrency, per-document backoff in SQLite.

Runs on the daemon's interval tick (monotonic clock), on demand (`POST /v1/sync`), on start
(every `pending` row is re-sent), and right after the breaker closes. One run at a time; a run stops early when
the provider becomes unreachable again so the backlog does not burn through its retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import offline_store as store
from agent.clock import ATHENS
from agent.core.errors import PayloadAltered
from agent.core.provider_health import UNREACHABLE_CODE
from agent.core.returns import waiting_for
from agent.core.runtime import Runtime
from agent.core.sync_report import SyncedDocument, SyncReport
from agent.core.transmission import Sent, Transmitter
from agent.elise.outcomes import Accepted, Duplicate, Rejected
from agent.fiscal.document_builder import series_by_type

log = logging.getLogger("pos_agent.sync")
BATCH = 200
RECOVERY_HORIZON = timedelta(days=366)
SENDABLE = (store.DocumentState.PENDING, store.DocumentState.DELAYED)

Sending = tuple[store.StoredDocument, "asyncio.Future[Sent]"]


class SyncService:
    def __init__(self, runtime: Runtime, transmitter: Transmitter) -> None:
        self.rt = runtime
        self.transmitter = transmitter
        self._lock = asyncio.Lock()
        self._recovered = False
        self.last_sync_at: datetime | None = None  # the end of the last run, for status

    @property
    def running(self) -> bool:
        return self._lock.locked()

    async def resend_unsent(self) -> SyncReport:
        """After a restart: every `pending` row may or may not have reached the provider."""
        return await self._run(lambda: store.unsent_document_ids(self.rt.conn))

    async def run(self, *, ignore_backoff: bool = False) -> SyncReport:
        """`ignore_backoff`: a person asked for the sync (`POST /v1/sync`, `pos-agent sync`), so
        every waiting document goes now, whatever its retry timer says."""
        return await self._run(None, send_all=ignore_backoff)

    async def _run(
        self,
        source: Callable[[], list[int]] | None,
        *,
        send_all: bool = False,
    ) -> SyncReport:
        """`source`: a fixed list of ids, fetched once and sent even while the breaker is open
        (the re-send on start); None: the due backlog, a page of ids at a time, after a probe if
        open. Each document is read when its turn comes."""
        async with self._lock:
            rt = self.rt
            if rt.breaker.is_open and source is None and not await self.probe():
                return SyncReport(stopped_early=True)
            # Right after the probe saw the provider come back, send the whole backlog: the
            # per-document backoff only spaced out attempts while the provider was failing, and
            # nothing else would run before the next interval once the breaker is closed.
            horizon = RECOVERY_HORIZON if send_all or self._recovered else timedelta(0)
            self._recovered = False
            self.void_stale_reservations()
            if source is None:
                due = partial(_due_ids, rt, horizon)
                report = await SendLoop(rt, self.transmitter, due, once=False).run()
            else:
                report = await SendLoop(rt, self.transmitter, source, once=True).run()
            self.last_sync_at = rt.clock()
            if report.attempted:
                log.info("sync: %s", report.model_dump(exclude={"documents"}))
            return report

    async def probe(self) -> bool:
        """While the breaker is open: one cheap call decides whether to try the backlog."""
        sent_in = self.rt.breaker.generation
        ok = await self.rt.client.probe()
        if ok:
            if self.rt.breaker.record_success(sent_in):
                self._recovered = True
        elif self.rt.breaker.is_open:
            # The probe does not depend on AADE, so a failed probe means the provider itself is
            # out of reach: receipts from now on carry code 1, not a stale 2 from an earlier 408.
            # (Only while still open: a probe that hung through a recovery must not re-open it.)
            self.rt.breaker.record_failure("provider unreachable (probe failed)", UNREACHABLE_CODE)
        return ok

    async def probe_and_sync(self) -> None:
        """The breaker job: on recovery the sync runs at once, not at the next interval."""
        if not self.rt.breaker.is_open or self.running:
            return
        if await self.probe():
            await self.run()

    def void_stale_reservations(self) -> None:
        """A card reservation from an earlier day can never be issued (the UID carries the date):
        it is recorded as void, journaled, and shown in status, never a silent gap."""
        rt = self.rt
        now = rt.clock()
        today = now.astimezone(ATHENS).date()
        with store.transaction(rt.conn):
            for series in series_by_type(rt.config).values():
                for doc in store.abandoned_reservations(rt.conn, series=series, before=now):
                    if doc.issued_at.astimezone(ATHENS).date() < today:
                        store.void_reservation(
                            rt.conn,
                            doc.id,
                            reason="card reservation never issued before the day ended",
                            now=now,
                        )


def _due_ids(rt: Runtime, horizon: timedelta) -> list[int]:
    return store.document_ids_due(rt.conn, rt.clock() + horizon, BATCH)


class SendLoop:
    """One sync run's sending: `concurrency` slots drawing documents, oldest first, from
    `source` (a page of ids per call; called once when `once`), each read when its turn comes.

    A continuous pool: a free slot takes the next document at once instead of waiting for a
    whole batch to finish. When the provider answered, the slot sends its next document before
    writing this one's outcome, so the write overlaps the next call instead of lengthening every
    cycle (the sync runs at 91 % of concurrency / latency rather than 88-89 %). After a failure
    the outcome is written first: it may open the breaker, which stops the run. A slot cut off
    between an answer and its write leaves that document as it was; it is sent again later and
    the provider answers 409 with the same MARK. A return whose original has no MARK yet is held
    and sent right after the original's MARK is recorded.
    """

    def __init__(
        self,
        runtime: Runtime,
        transmitter: Transmitter,
        source: Callable[[], list[int]],
        *,
        once: bool,
    ) -> None:
        self.rt = runtime
        self.transmitter = transmitter
        self.source = source
        self.once = once
        self.report = SyncReport()
        self.queue: deque[int] = deque()
        self.seen: set[int] = set()
        self.held: dict[int, list[int]] = {}  # returns waiting for their original, by original
        self.fetching = True

    async def run(self) -> SyncReport:
        slots = self.rt.config.sync.concurrency
        await asyncio.gather(*(self._worker() for _ in range(slots)))
        return self.report

    def _refill(self) -> None:
        """A page of ids; synchronous, so slots never race on it."""
        if not self.fetching:
            return
        in_flight = self.transmitter.in_flight
        fresh = [i for i in self.source() if i not in self.seen and i not in in_flight]
        self.seen.update(fresh)
        self.queue.extend(fresh)
        if not fresh or self.once:
            self.fetching = False

    def take(self) -> store.StoredDocument | None:
        """The next document to send, read now; None when none is left or the run stops (the
        breaker opened after this run's first attempt)."""
        rt, report = self.rt, self.report
        while not report.stopped_early:
            if not self.queue:
                self._refill()
                if not self.queue:
                    return None
            doc = self._readable(self.queue.popleft())
            if doc is None:
                continue
            original = waiting_for(rt.conn, doc)
            if original is not None:
                self.transmitter.hold_unsent(doc, original)
                self.held.setdefault(original.id, []).append(doc.id)
                continue
            if rt.breaker.is_open and report.attempted:
                report.stopped_early = True
                return None
            report.attempted += 1
            return doc
        return None

    def _readable(self, document_id: int) -> store.StoredDocument | None:
        """The document if it is still to be sent and its stored payload is intact."""
        rt = self.rt
        try:
            doc = store.get_document(rt.conn, document_id)
        except store.PackedDataDamaged as exc:
            log.critical("document %s is not sent: %s", document_id, exc)
            self.report.altered.append(document_id)
            return None
        if doc is None or doc.state not in SENDABLE or doc.id in self.transmitter.in_flight:
            return None  # sent or settled since its id was read
        if not self.transmitter.payload_intact(doc):
            log.critical("document %s is not sent: %s", doc.id, PayloadAltered.WHAT)
            self.report.altered.append(doc.id)
            return None
        return doc

    def _start(self, doc: store.StoredDocument | None) -> Sending | None:
        if doc is None:
            return None
        return doc, asyncio.ensure_future(self.transmitter.send(doc))

    async def _worker(self) -> None:
        sending = self._start(self.take())
        try:
            while sending is not None:
                doc, call = sending
                sent = await call
                sending = None
                if isinstance(sent.outcome, Accepted | Duplicate | Rejected):
                    sending = self._start(self.take())
                    if sending is not None:
                        await asyncio.sleep(0)  # the next call writes its request now
                recorded = self.transmitter.record(doc, sent)
                count(self.report, recorded)
                if recorded.mark is not None:
                    self.queue.extendleft(reversed(self.held.pop(recorded.id, [])))
                if sending is None:
                    sending = self._start(self.take())
        finally:
            if sending is not None:
                sending[1].cancel()


def count(report: SyncReport, doc: store.StoredDocument) -> None:
    """One document's recorded outcome, added to the run's report."""
    state = doc.state
    if state == store.DocumentState.ACCEPTED:
        report.accepted += 1
    elif state == store.DocumentState.REJECTED:
        report.rejected += 1
    else:
        report.still_delayed += 1
    report.documents.append(
        SyncedDocument(
            receipt_id=doc.id,
            series=doc.series,
            number=doc.number,
            state=state.value,
            mark=doc.mark,
            last_error=doc.last_error if state != store.DocumentState.ACCEPTED else None,
        )
    )
