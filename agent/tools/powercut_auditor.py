"""The audit after each cut of `pos-agent powercut`, reading only what changed since the last.

The whole audit (`powercut_audit.audit_cut`) reads every told answer, every document and the
whole journal: after a thousand cuts over two thousand sales that was most of the run. What
the register changed between two audits is in its journal (every state change of a document
is an entry naming it), so after a cut this audit:

1. finds the newest *checkpoint* that still stands: the journal head an earlier audit verified,
   still in the journal with the same hash. The journal only grows and a cut only takes back
   whole transactions from its end, so every entry up to a standing checkpoint is the one
   verified then. An entry the cut took back (a background sync commits without waiting for
   the disk) leaves the checkpoint of that audit fallen: an older one is used, and the answers
   told since that older audit are checked again in full. None standing (a rollback accepted,
   say): the whole audit;
2. verifies the journal from there (`verify_journal(after=...)`), and the archive: in full when
   its batches changed, otherwise that each sealed file is still there at its sealed length;
3. checks in full every answer told since that checkpoint's audit, every told document the
   journal names since, and every told MARK a cut sent back to unsent: the same number, UID,
   issue time, MARK, offline code and frozen payload (`check_told`);
4. checks for every other told answer that its number still holds the same document (one scan
   of the (series, number) index), or moved to the archive: a cut that lost an old row, or a
   rollback that gave its number to another, shows here without reading a payload;
5. no number told twice, no silent gap (`numbering_gaps`, read from the trigger-kept counts);
6. the provider's documents since the last look (`?after_mark=`): each is in the store under
   its number with its UID and MARK, or archived; each earlier one still has its number here;
   the documents the journal names since hold no MARK the provider gave to another.

Every `full_every`-th audit, and the last one (the backlog sent, nothing running), is the whole
audit, so the two are compared on the same run.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import offline_store as store
from agent.tools.powercut_audit import Findings, audit_cut, check_told
from agent.tools.powercut_till import Ledger, Told
from offline_store.journal import archive_boundary, journal_entry, journal_head

KEPT_CHECKPOINTS = 16


@dataclass(frozen=True)
class Checkpoint:
    """The journal head an audit verified, and how many answers the ledger held then."""

    seq: int
    hash: str
    told: int


@dataclass(frozen=True)
class Sealed:
    """An archive batch as the last verified history held it."""

    id: int
    file: str
    bytes: int
    sha256: str
    journal_last_seq: int


class Auditor:
    def __init__(
        self,
        archive_dir: Path,
        ledger: Ledger,
        provider: Callable[[int], list[dict[str, Any]]],
        findings: Findings,
        *,
        full_every: int,
    ) -> None:
        """`provider(after_mark)`: the provider's documents accepted after that MARK."""
        self.archive_dir = archive_dir
        self.ledger = ledger
        self.provider = provider
        self.findings = findings
        self.full_every = max(1, full_every)
        self.audits = 0
        self.full_audits = 0
        self.at_provider: dict[int, dict[str, Any]] = {}  # by MARK
        self._provider_numbers: Counter[tuple[str, int]] = Counter()
        self._provider_ids: dict[tuple[str, int], int] = {}  # the store id a number was found at
        self._checkpoints: list[Checkpoint] = []
        self._sealed: list[Sealed] | None = None
        self._told_numbers: dict[tuple[str, int], str] = {}
        self._numbered = 0
        self._deferred: set[str] = set()  # told MARKs a cut sent back to unsent
        self._unjudged: set[int] = set()  # documents with a MARK the provider did not list yet

    def provider_documents(self) -> list[dict[str, Any]]:
        """Every document the provider holds (the new ones fetched)."""
        self._fetch_provider()
        return list(self.at_provider.values())

    def forget(self) -> None:
        """A rollback was accepted: no checkpoint stands, the next audit is the whole one."""
        self._checkpoints.clear()
        self._sealed = None

    def audit(self, conn: sqlite3.Connection, label: str, *, settled: bool = False) -> None:
        self.audits += 1
        self._number_told(label)
        start = None if settled else self._standing(conn)
        if start is None or self.audits % self.full_every == 0:
            self.full_audits += 1
            audit_cut(
                conn,
                self.archive_dir,
                self.ledger,
                self.provider_documents,
                self.findings,
                label,
                settled=settled,
            )
            self._sealed = _sealed(conn)
            self._deferred.clear()
            self._unjudged.clear()
        else:
            self._incremental(conn, label, start)
        head = journal_head(conn)
        seq, digest = (head.seq, head.hash) if head else archive_boundary(conn)
        self._checkpoints = [
            *self._checkpoints[-KEPT_CHECKPOINTS + 1 :],
            Checkpoint(seq, digest, len(self.ledger.told)),
        ]

    # -- the steps -----------------------------------------------------------------------------

    def _standing(self, conn: sqlite3.Connection) -> Checkpoint | None:
        boundary = archive_boundary(conn)[0]
        for checkpoint in reversed(self._checkpoints):
            if checkpoint.seq <= boundary:  # moved to the archive, checked with it
                return checkpoint
            entry = journal_entry(conn, checkpoint.seq)
            if entry is not None and entry.hash == checkpoint.hash:
                return checkpoint
        return None

    def _incremental(self, conn: sqlite3.Connection, label: str, start: Checkpoint) -> None:
        f = self.findings
        before = self._fetch_provider()
        journal = store.verify_journal(conn, after=(start.seq, start.hash))
        if not journal.ok:
            f.journal_broken += 1
            f.note(f"{label}: journal broken at entry {journal.first_bad_seq}")
        self._check_archive(conn, label)
        changed = {
            int(row[0])
            for row in conn.execute(
                "SELECT DISTINCT document_id FROM journal WHERE seq > ? "
                "AND document_id IS NOT NULL",
                (start.seq,),
            )
        } | self._unjudged
        told = list(self.ledger.told.values())
        for index, answer in enumerate(told):
            if (
                index >= start.told
                or answer.request_id in self._deferred
                or _names(answer, changed)
            ):
                self._check_in_full(conn, answer, label)
        ids = {(series, number): id_ for id_, series, number in _numbers(conn)}
        runs = _archived_runs(conn)
        kicks = {int(row[0]) for row in conn.execute("SELECT id FROM drawer_kicks")}
        for answer in told[: start.told]:
            self._check_number(answer, ids, kicks, runs, label)
        gaps = store.numbering_gaps(conn)
        if gaps:
            f.gaps += sum(len(numbers) for numbers in gaps.values())
            f.note(f"{label}: numbering gaps {gaps}")
        self._check_provider(conn, before, ids, runs, label)
        self._check_marks(conn, changed, label)

    def _check_in_full(self, conn: sqlite3.Connection, told: Told, label: str) -> None:
        if check_told(conn, told, self.findings, label, settled=False):
            self._deferred.add(told.request_id)
        else:
            self._deferred.discard(told.request_id)

    def _check_number(
        self,
        told: Told,
        ids: dict[tuple[str, int], int],
        kicks: set[int],
        runs: list[tuple[str, int, int]],
        label: str,
    ) -> None:
        f = self.findings
        if told.kind == "kick":
            if int(told.answer["kick_id"]) not in kicks:
                f.told_but_missing += 1
                f.note(f"{label}: drawer kick {told.request_id} told, not in the store")
            return
        key = (told.answer["series"], int(told.answer["number"]))
        found = ids.get(key)
        if found == int(told.answer["receipt_id"]) or (found is None and _in_runs(key, runs)):
            return
        if found is None:
            f.told_but_missing += 1
            f.note(f"{label}: {told.kind} {told.request_id} ({key[1]}) not in store")
        else:
            f.changed_answers += 1
            f.note(f"{label}: {told.request_id}: {key} now holds document {found}")

    def _check_archive(self, conn: sqlite3.Connection, label: str) -> None:
        """The whole history when the batches changed; else each sealed file still whole in
        length (its bytes were hashed when it was verified, and a batch is never rewritten)."""
        sealed = _sealed(conn)
        problem = None
        if sealed != self._sealed:
            history = store.verify_history(conn, self.archive_dir)
            problem = None if history.ok else history.problem
        else:
            for batch in sealed:
                path = self.archive_dir / batch.file
                size = path.stat().st_size if path.exists() else -1
                if size < batch.bytes:
                    problem = f"{batch.file} is {size} bytes, sealed at {batch.bytes}"
        if problem is not None:
            self.findings.journal_broken += 1
            self.findings.note(f"{label}: history broken: {problem}")
        self._sealed = sealed

    def _check_provider(
        self,
        conn: sqlite3.Connection,
        new: list[dict[str, Any]],
        ids: dict[tuple[str, int], int],
        runs: list[tuple[str, int, int]],
        label: str,
    ) -> None:
        """Documents the provider took since the last look: here under their number, with their
        UID (and MARK once the store has one); earlier ones: still at the same row."""
        f = self.findings
        for doc in new:
            key = (doc["series"], int(doc["number"]))
            row = conn.execute(
                "SELECT id, uid, mark FROM documents WHERE series = ? AND number = ?", key
            ).fetchone()
            if row is None and _in_runs(key, runs):
                continue
            if row is None or row[1] != doc["uid"]:
                f.unknown_at_provider += 1
                f.note(f"{label}: provider document {key[0]} {key[1]} unknown here")
                continue
            self._provider_ids[key] = int(row[0])
            if row[2] is not None and int(row[2]) != int(doc["mark"]):
                f.wrong_marks += 1
                f.note(f"{label}: {key} holds MARK {row[2]}, provider {doc['mark']}")
        for key, id_ in self._provider_ids.items():
            found = ids.get(key)
            if found != id_ and not (found is None and _in_runs(key, runs)):
                f.unknown_at_provider += 1
                f.note(f"{label}: provider document {key[0]} {key[1]} no longer here")

    def _check_marks(self, conn: sqlite3.Connection, changed: set[int], label: str) -> None:
        """The documents the journal names since the checkpoint hold no MARK the provider gave
        to another (one the provider did not list at this audit's look is judged at the next)."""
        uid_of = {int(mark): doc["uid"] for mark, doc in self.at_provider.items()}
        self._unjudged.clear()
        rows = conn.execute(
            "SELECT id, uid, mark, series, number FROM documents WHERE mark IS NOT NULL "
            "AND id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(changed)),),
        )
        for id_, uid, mark, series, number in rows:
            if int(mark) not in uid_of:
                self._unjudged.add(int(id_))
            elif uid_of[int(mark)] != uid:
                self.findings.wrong_marks += 1
                self.findings.note(f"{label}: {series} {number} holds MARK {mark} of another")

    def _fetch_provider(self) -> list[dict[str, Any]]:
        """The provider's documents since the last look; a number held twice there counts once,
        when the second comes."""
        new = self.provider(max(self.at_provider, default=0))
        for doc in new:
            self.at_provider[int(doc["mark"])] = doc
            key = (doc["series"], int(doc["number"]))
            self._provider_numbers[key] += 1
            if self._provider_numbers[key] == 2:
                self.findings.reused_numbers += 1
                self.findings.note(f"provider holds two documents {key[0]} {key[1]}")
        return new

    def _number_told(self, label: str) -> None:
        """No number told to two sales (each new answer against every earlier one)."""
        told = list(self.ledger.told.values())
        for answer in told[self._numbered :]:
            if answer.kind != "receipt":
                continue
            key = (answer.answer["series"], int(answer.answer["number"]))
            owner = self._told_numbers.setdefault(key, answer.request_id)
            if owner != answer.request_id:
                self.findings.reused_numbers += 1
                self.findings.note(f"{label}: {key} told to {owner} and {answer.request_id}")
        self._numbered = len(told)


def _names(told: Told, changed: set[int]) -> bool:
    return told.kind != "kick" and int(told.answer["receipt_id"]) in changed


def _numbers(conn: sqlite3.Connection) -> list[tuple[int, str, int]]:
    """(id, series, number) of every live document, read from the (series, number) index."""
    return [
        (int(row[0]), str(row[1]), int(row[2]))
        for row in conn.execute("SELECT id, series, number FROM documents")
    ]


def _archived_runs(conn: sqlite3.Connection) -> list[tuple[str, int, int]]:
    return [
        (str(row[0]), int(row[1]), int(row[2]))
        for row in conn.execute("SELECT series, first_number, last_number FROM archived_numbers")
    ]


def _in_runs(key: tuple[str, int], runs: list[tuple[str, int, int]]) -> bool:
    return any(series == key[0] and first <= key[1] <= last for series, first, last in runs)


def _sealed(conn: sqlite3.Connection) -> list[Sealed]:
    return [
        Sealed(batch.id, batch.file, batch.bytes, batch.sha256, batch.journal_last_seq)
        for batch in store.archive_batches(conn)
    ]
