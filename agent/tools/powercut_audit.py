"""What `pos-agent powercut` checks after every cut, and once more at the end.

After each cut the register is restarted on what survived and, before the next cut:
- every answer a till read (201/200) is in the store, with the same receipt id, series, number,
  UID and issue time, the same MARK if it told one (or, for a MARK the background sync had
  recorded without waiting for the disk, the document back to unsent, to be sent again and
  given the same MARK by the provider's 409: checked at the end), the same offline code and QR if it printed
  one, and the same frozen provider payload as at the first look after it was told
  (`told_but_missing`, `changed_answers`); a signed reservation it was told is still there; a
  drawer kick it was told is still queued or done;
- no number is held by two sales, here or at the provider (`reused_numbers`);
- numbering has no gap that is not recorded (`gaps`, `offline_store.numbering_gaps`);
- the journal verifies (with the archive: the whole history, `verify_history`);
- every document the provider holds is known to the store (`unknown_at_provider`), and no store
  document holds a MARK the provider gave to another (`wrong_marks`).

At the end, with the provider back and the backlog sent: every told sale is at the provider
(`lost`), once (`duplicates`), and no receipt came out of the printer twice unless as a copy
(«ΑΝΤΙΓΡΑΦΟ», `printed_twice`).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import offline_store as store
from agent.tools.powercut_till import Ledger, Told
from printers.layout import COPY_BANNER

PAPER_CUT = b"\x1dV"
MAX_PROBLEMS = 60


@dataclass
class Findings:
    told_but_missing: int = 0
    changed_answers: int = 0
    reused_numbers: int = 0
    gaps: int = 0
    journal_broken: int = 0
    unknown_at_provider: int = 0
    wrong_marks: int = 0
    marks_to_resend: int = 0  # told MARKs a cut took back to `pending` (not a loss, see above)
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    @property
    def count(self) -> int:
        """Every finding that breaks a promise (`marks_to_resend` is not one)."""
        return (
            self.told_but_missing
            + self.changed_answers
            + self.reused_numbers
            + self.gaps
            + self.journal_broken
            + self.unknown_at_provider
            + self.wrong_marks
        )

    @property
    def clean(self) -> bool:
        return self.count == 0


@dataclass
class Tally:
    """What the run did (cuts by kind, restarts, audits), reported beside the findings."""

    fs_cuts: int = 0
    torn_cuts: int = 0
    startup_cuts: int = 0
    migration_cuts: int = 0
    archive_cuts: int = 0
    archive_runs: int = 0
    refused_as_rolled_back: int = 0
    daemon_crashes: int = 0
    failed_starts: int = 0
    restart_ms: list[float] = field(default_factory=list)
    audit_ms: list[float] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    lost_bytes: int = 0
    lost_names: int = 0
    cut_ops: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def audit_cut(
    conn: sqlite3.Connection,
    archive_dir: Path,
    ledger: Ledger,
    provider: Callable[[], list[dict[str, Any]]],
    findings: Findings,
    label: str,
    *,
    settled: bool = False,
) -> None:
    """One look at the register after a cut (the daemon is running again and its sync may be
    sending meanwhile: the provider's documents are read before the store, for documents the
    store must know, and after it, for the MARKs the store holds). `settled`: the backlog is
    sent and nothing runs, so a MARK the provider does not list is wrong too."""
    before = provider()
    for told in ledger.told.values():
        check_told(conn, told, findings, label, settled=settled)
    by_number: dict[tuple[str, int], set[str]] = {}
    for told in ledger.told.values():
        if told.kind == "receipt":
            key = (told.answer["series"], int(told.answer["number"]))
            by_number.setdefault(key, set()).add(told.request_id)
    for key, owners in by_number.items():
        if len(owners) > 1:
            findings.reused_numbers += 1
            findings.note(f"{label}: {key} told to {sorted(owners)}")
    gaps = store.numbering_gaps(conn)
    if gaps:
        findings.gaps += sum(len(numbers) for numbers in gaps.values())
        findings.note(f"{label}: numbering gaps {gaps}")
    history = store.verify_history(conn, archive_dir)
    if not history.ok:
        findings.journal_broken += 1
        findings.note(f"{label}: history broken: {history.problem}")
    _check_provider(conn, before, provider(), findings, label, settled)


def check_told(
    conn: sqlite3.Connection, told: Told, findings: Findings, label: str, *, settled: bool
) -> bool:
    """One told answer against the store; True when its MARK is back to unsent (a sync's
    outcome a cut took back: judged once the backlog is sent)."""
    answer = told.answer
    deferred = False
    if told.kind == "kick":
        kick = store.get_kick(conn, int(answer["kick_id"]))
        if kick is None:
            findings.told_but_missing += 1
            findings.note(f"{label}: drawer kick {told.request_id} told, not in the store")
        return False
    doc = store.get_document(conn, int(answer["receipt_id"]))
    if doc is None:
        if archived(conn, answer["series"], int(answer["number"])):
            return False
        findings.told_but_missing += 1
        findings.note(f"{label}: {told.kind} {told.request_id} ({answer['number']}) not in store")
        return False
    expected: tuple[Any, ...] = (
        answer["series"],
        int(answer["number"]),
        answer["uid"],
        answer["issued_at"],
    )
    found: tuple[Any, ...] = (doc.series, doc.number, doc.uid, doc.issued_at.isoformat())
    if told.kind == "receipt":
        if doc.request_id != told.request_id:
            expected += (told.request_id,)
            found += (doc.request_id,)
        unsent = doc.state in (store.DocumentState.PENDING, store.DocumentState.DELAYED)
        if answer.get("mark") is not None and doc.mark is None and unsent and not settled:
            # A sync's outcome is committed without waiting for the disk (the design: the
            # document is sent again and the provider's 409 gives the same MARK back); a retry
            # answered from it told the MARK. Checked once the backlog is sent.
            findings.marks_to_resend += 1
            deferred = True
        elif answer.get("mark") is not None:
            expected += (answer["mark"], answer.get("authentication_code"))
            found += (doc.mark, doc.authentication_code)
        if answer.get("delayed_code"):
            expected += (answer["delayed_code"], answer.get("offline_qr_url"))
            found += (doc.delayed_code, doc.offline_qr_url)
        digest = hashlib.sha256(doc.payload or b"").hexdigest()
        if told.payload_sha256 is None:
            told.payload_sha256 = digest
        elif told.payload_sha256 != digest:
            findings.changed_answers += 1
            findings.note(f"{label}: {told.request_id}: its frozen payload changed")
    if expected != found:
        findings.changed_answers += 1
        findings.note(f"{label}: {told.request_id}: told {expected}, store has {found}")
    return deferred


def archived(conn: sqlite3.Connection, series: str, number: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM archived_numbers WHERE series = ? AND ? BETWEEN first_number AND "
        "last_number",
        (series, number),
    ).fetchone()
    return row is not None


def _check_provider(
    conn: sqlite3.Connection,
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    findings: Findings,
    label: str,
    settled: bool,
) -> None:
    rows = {
        row["uid"]: (row["mark"], row["series"], row["number"])
        for row in conn.execute("SELECT uid, mark, series, number FROM documents")
    }
    mark_of = {doc["uid"]: int(doc["mark"]) for doc in after}
    numbers = Counter((doc["series"], int(doc["number"])) for doc in after)
    for (series, number), count in numbers.items():
        if count > 1:
            findings.reused_numbers += 1
            findings.note(f"{label}: the provider holds {count} documents {series} {number}")
    for doc in before:
        if doc["uid"] in rows or archived(conn, doc["series"], int(doc["number"])):
            continue
        findings.unknown_at_provider += 1
        findings.note(f"{label}: provider document {doc['series']} {doc['number']} unknown here")
    uid_of = {int(doc["mark"]): doc["uid"] for doc in after}
    for uid, (mark, series, number) in rows.items():
        if mark is None:
            continue
        if uid not in mark_of and int(mark) not in uid_of and not settled:
            continue  # the provider's list may lag its answer for a moment: checked when settled
        if mark_of.get(uid) != int(mark) or uid_of.get(int(mark)) != uid:
            findings.wrong_marks += 1
            findings.note(
                f"{label}: {series} {number} holds MARK {mark}, provider {mark_of.get(uid)}"
            )


@dataclass(frozen=True)
class EndCheck:
    lost: int
    duplicates: int
    printed_twice: int
    copies: int
    problems: list[str]


def audit_end(
    ledger: Ledger, provider_docs: list[dict[str, Any]], printer: bytes, voided: set[str]
) -> EndCheck:
    """After the drain: told sales at the provider exactly once; no ticket printed twice
    unless it says «ΑΝΤΙΓΡΑΦΟ». `voided`: UIDs a technician's rollback accept made void."""
    at_provider = Counter(doc["uid"] for doc in provider_docs)
    problems: list[str] = []
    lost = 0
    for told in ledger.told.values():
        if told.kind != "receipt" or told.answer["uid"] in voided:
            continue
        if at_provider[told.answer["uid"]] == 0:
            lost += 1
            problems.append(f"lost: {told.request_id} {told.answer['uid']} not at the provider")
    duplicates = sum(count - 1 for count in at_provider.values() if count > 1)
    banner = COPY_BANNER.encode("cp1253")
    originals: Counter[str] = Counter()
    copies = 0
    uids = {told.answer["uid"] for told in ledger.told.values() if told.kind == "receipt"}
    for ticket in printer.split(PAPER_CUT):
        found = [uid for uid in uids if uid.encode() in ticket]
        if not found:
            continue
        if banner in ticket:
            copies += 1
        else:
            originals[found[0]] += 1
    printed_twice = sum(count - 1 for count in originals.values() if count > 1)
    for uid, count in originals.items():
        if count > 1:
            problems.append(f"printed {count} times without «ΑΝΤΙΓΡΑΦΟ»: {uid}")
    return EndCheck(lost, duplicates, printed_twice, copies, problems[:MAX_PROBLEMS])


def undrained(conn: sqlite3.Connection, state_dir: Path, root: Path) -> list[str]:
    """What a backlog that was not sent in time leaves for the post-mortem: its documents, the
    daemon's CRITICAL lines, and a copy of the state directory (the filesystem's memory, gone
    at unmount) in `root`/state-undrained."""
    rows = conn.execute(
        "SELECT id, request_id, state, attempts, next_attempt_at, last_error, delayed_code, "
        "mark_unknown FROM documents WHERE state IN ('pending', 'delayed') LIMIT 10"
    )
    problems = [f"unsent: {tuple(row)}" for row in rows]
    shutil.copytree(state_dir, root / "state-undrained")
    log_lines = (root / "daemon.log").read_text("utf-8", "replace").splitlines()
    return problems + [line for line in log_lines if "CRITICAL" in line][-5:]


# The counts a run's report carries that must all be 0 for it to pass.
ZERO_COUNTS = (
    "lost",
    "duplicates",
    "gaps",
    "wrong_marks",
    "told_but_missing",
    "changed_answers",
    "reused_numbers",
    "unknown_at_provider",
    "printed_twice",
    "refused_as_rolled_back",
)


def passed(report: dict[str, Any]) -> bool:
    """The run passed: nothing lost, duplicated, reused or changed, the journal intact."""
    details = report["details"]
    return (
        all(report[key] == 0 for key in ZERO_COUNTS)
        and report["journal_ok"]
        and details["daemon_crashes"] == 0
    )
