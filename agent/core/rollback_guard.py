"""Refuse to reuse numbers when the database has gone back in time (see
`offline_store/high_water.py` for the mark and why it lives outside the database).

At start the daemon compares the database with the mark. A series whose counter is behind
refuses to issue (`DatabaseRolledBack`, 503 for the till), `status` is CRITICAL with the
technician's procedure, and the mark file is left as it is: it is the evidence of how far the
register had got. Otherwise the mark advances after every commit that allocated a number,
before the provider is called and the till is told.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

import offline_store as store
from agent.clock import Clock
from agent.config import AgentConfig
from agent.core.errors import DatabaseRolledBack, NothingRolledBack
from agent.fiscal.document_builder import series_by_type

log = logging.getLogger("pos_agent.storage")

ROLLBACK_PROCEDURE = (
    "stop the service; find the newer copy of the database (its -wal file, a backup, the old "
    "card) and restore receipts.db with its -wal and -shm together; if it is lost for good, the "
    "missing receipts exist only at the provider: run `pos-agent rollback accept` (docs/technician.md, "
    "'The database went back in time')"
)


LOST_REASON = (
    "issued before the database went back in time; the provider holds it, this register "
    "does not (accepted by a technician with pos-agent rollback accept)"
)
RESERVATION_REASON = (
    "open when the database went back in time: it may have been issued in the lost part, so "
    "its number is never used again (accepted by a technician with pos-agent rollback accept)"
)


class NumberRange(BaseModel):
    from_: int = Field(alias="from")
    to: int


class AcceptedRollback(BaseModel):
    """What `accept` recorded: per series the numbers now void here (the provider holds them),
    the card reservations voided with them, and the journal the database had reached. The
    answer of `POST /v1/rollback/accept`."""

    lost_numbers: dict[str, NumberRange]
    voided_reservations: dict[str, list[int]]
    journal: str | None


class RollbackGuard:
    def __init__(self, conn: sqlite3.Connection, config: AgentConfig, clock: Clock) -> None:
        self._conn = conn
        self._config = config
        self._clock = clock
        self._state_dir = config.state_dir
        self.rollback: store.Rollback | None = None
        self.unreadable: str | None = None  # the mark file is damaged: nothing is compared
        self.write_failure: str | None = None
        self._marks: store.MarkFile | None = None

    def close(self) -> None:
        if self._marks is not None:
            self._marks.close()
            self._marks = None

    def check(self) -> None:
        """At start, before the first request: compare, then record where the database is."""
        try:
            mark = store.read_mark(self._state_dir)
        except store.HighWaterFileDamaged as exc:
            self.unreadable = str(exc)
            log.critical("the high-water mark is damaged: %s; %s", exc, ROLLBACK_PROCEDURE)
            return
        if mark is not None:
            rollback = store.compare_with_mark(self._conn, mark)
            if rollback:
                self.rollback = rollback
                log.critical(
                    "the database went back in time: %s; %s",
                    describe_rollback(rollback),
                    ROLLBACK_PROCEDURE,
                )
                return
        self.advance()

    def accept(self) -> AcceptedRollback:
        """The technician's decision that the newer database is lost for good: each missing
        number becomes a `void` row (numbering stays gap-free and never reuses a number the
        provider holds), so does every open card reservation (the lost part may have issued
        it: its number was taken before, so no counter shows that), the loss is journaled, and
        the mark moves to the database's new head. One transaction: a crash leaves the rollback
        as it was, to be accepted again."""
        rollback = self.rollback
        if rollback is None:
            raise NothingRolledBack("the database is not behind its high-water mark")
        now = self._clock()
        types = {series: type_code for type_code, series in series_by_type(self._config).items()}
        with store.transaction(self._conn):
            for series, (have, had) in sorted(rollback.series.items()):
                type_code = types.get(series, "")
                for number in range(have + 1, had + 1):
                    self._void_lost(series, type_code, number, now)
            voided: dict[str, list[int]] = {}
            for doc in store.list_documents(
                self._conn, state=store.DocumentState.RESERVED, limit=1_000_000
            ):
                store.void_reservation(self._conn, doc.id, reason=RESERVATION_REASON, now=now)
                voided.setdefault(doc.series, []).append(doc.number)
            store.append_journal(
                self._conn,
                "database.rollback_accepted",
                {
                    "lost_numbers": {s: [h + 1, m] for s, (h, m) in rollback.series.items()},
                    "voided_reservations": voided,
                    "journal": rollback.journal,
                },
                document_id=None,
                at=now,
            )
        self.rollback = None
        self.advance()
        log.warning("rollback accepted by a technician: %s", describe_rollback(rollback))
        return AcceptedRollback(
            lost_numbers={
                s: NumberRange(**{"from": h + 1, "to": m}) for s, (h, m) in rollback.series.items()
            },
            voided_reservations=voided,
            journal=rollback.journal,
        )

    def _void_lost(self, series: str, type_code: str, number: int, now: datetime) -> None:
        kind = (
            store.DocumentKind.POS_RECEIPT
            if type_code.startswith("8.")
            else store.DocumentKind.RECEIPT
        )
        reserved = store.insert_document(
            self._conn,
            series,
            lambda n: store.NewDocument(
                request_id=f"lost:{series}:{n}",
                request_hash="",
                kind=kind,
                type_code=type_code,
                issued_at=now,
                uid="",
                internal_id=f"lost:{series}:{n}",
                request_json="{}",
                total_amount=Decimal("0"),
                reserved_until=now,
            ),
            now=now,
        )
        assert reserved.number == number
        store.void_reservation(self._conn, reserved.id, reason=LOST_REASON, now=now)

    def refuse_if_behind(self, series: str) -> None:
        """Inside the issuing transaction, before a number of `series` is taken. Every series
        waits while the database is behind: even with its counter intact, a series may have
        lost the issue of a card reservation, which a new sale would then take over."""
        rollback = self.rollback
        if rollback is None:
            return
        if series in rollback.series:
            have, had = rollback.series[series]
            raise DatabaseRolledBack(
                f"series {series} is refused: the database's last number is {have}, but this "
                f"register had issued up to {had}; a new receipt would reuse a number the "
                "provider already holds. A technician must act: see pos-agent status"
            )
        raise DatabaseRolledBack(
            f"issuing waits: the database went back in time ({describe_rollback(rollback)}); "
            "a new receipt could reuse a reservation issued in the lost part. A technician "
            "must act: see pos-agent status"
        )

    def advance(self) -> None:
        """After a commit that allocated a number or froze a document (a card reservation
        issued: no counter moves, but the journal head does, and that is what shows its loss).
        A rolled-back or unreadable mark is kept as the evidence; a failed write is a finding,
        not a refused sale (the receipt is already committed, and the database is only ahead
        of the mark)."""
        if self.rollback is not None or self.unreadable is not None:
            return
        mark = store.current_mark(self._conn)
        try:
            if self._marks is None:
                self._marks = store.MarkFile(self._state_dir)
            self._marks.write(mark)
        except OSError as exc:
            if self.write_failure is None:
                log.error("the high-water mark cannot be written: %s", exc)
            self.write_failure = str(exc)
            return
        self.write_failure = None


def describe_rollback(rollback: store.Rollback) -> str:
    parts = [
        f"series {series} at {have}, the register had issued up to {had}"
        for series, (have, had) in sorted(rollback.series.items())
    ]
    if rollback.journal:
        parts.append(rollback.journal)
    return "; ".join(parts)
