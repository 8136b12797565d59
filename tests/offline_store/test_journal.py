import hashlib
import sqlite3
from datetime import timedelta
from decimal import Decimal

import pytest

from offline_store import append_journal, transaction, verify_journal
from offline_store.journal import (
    GENESIS_HASH,
    canonical_json,
    entry_hash,
    journal_entry,
    journal_head,
    time_to_us,
)
from tests.offline_store.factory import T0, open_store

T0_US = 1_768_464_000_000_000  # 2026-01-15 08:00 UTC


def _fill(conn: sqlite3.Connection, count: int, *, event: str = "test.event") -> list[str]:
    """`count` entries, each in its own transaction (so each keeps its hash)."""
    hashes = []
    for index in range(count):
        detail = {"i": index, "amount": Decimal("1.10"), "text": "Απόδειξη"}
        at = T0 + timedelta(seconds=index)
        with transaction(conn):
            hashes.append(append_journal(conn, event, detail, document_id=None, at=at))
    return hashes


def _transactions(conn: sqlite3.Connection, *sizes: int) -> list[str]:
    """Transactions of a sale's events (coded ones), `sizes` entries each."""
    hashes = []
    events = ("document.pending", "signature.used", "print.queued", "print.printing")
    for number, size in enumerate(sizes):
        with transaction(conn):
            for index in range(size):
                at = T0 + timedelta(seconds=number)
                detail = {"i": index, "job_id": number}
                event = events[index % len(events)]
                hashes.append(append_journal(conn, event, detail, document_id=7, at=at))
    return hashes


def test_empty_journal_verifies(tmp_path):
    assert verify_journal(open_store(tmp_path)).ok


def test_chain_links_and_hash_formula(tmp_path):
    conn = open_store(tmp_path)
    hashes = _fill(conn, 3)
    rows = conn.execute("SELECT * FROM journal ORDER BY seq").fetchall()
    assert [row["seq"] for row in rows] == [1, 2, 3]
    # The link is the previous row's hash, which each hash covers: not stored twice. The hash
    # is kept as 32 bytes and the time as microseconds, the text columns stay empty.
    assert [row["prev_hash"] for row in rows] == ["", "", ""]
    assert [(row["hash"], row["at"]) for row in rows] == [("", "")] * 3
    assert [bytes(row["digest"]).hex() for row in rows] == hashes
    # A time in whole seconds (the daemon's clock) is kept as seconds, hashed in microseconds.
    assert rows[0]["at_s"] * 1_000_000 == time_to_us(T0) == T0_US and rows[0]["at_us"] is None
    assert rows[0]["detail"] == '{"amount":"1.10","i":0,"text":"Απόδειξη"}'
    body = canonical_json(
        {
            "seq": 1,
            "at": T0_US,
            "document_id": None,
            "event": "test.event",
            "detail": {"amount": "1.10", "i": 0, "text": "Απόδειξη"},
        }
    )
    assert hashes[0] == hashlib.sha256((GENESIS_HASH + body).encode()).hexdigest()
    assert verify_journal(conn).ok
    assert verify_journal(conn).entries == 3
    assert journal_entry(conn, 1).time == T0


def _legacy_entry(conn: sqlite3.Connection, prev: str, seq: int, *, linked: bool) -> str:
    """An entry as schema 1 (`linked`: prev_hash stored) or schema 2 wrote it: text time, hex
    hash."""
    at = (T0 + timedelta(seconds=seq)).isoformat()
    detail = {"i": seq, "text": "Απόδειξη"}
    digest = entry_hash(prev, seq=seq, at=at, document_id=None, event="old.event", detail=detail)
    conn.execute(
        "INSERT INTO journal (seq, at, document_id, event, detail, prev_hash, hash) "
        "VALUES (?, ?, NULL, 'old.event', ?, ?, ?)",
        (seq, at, canonical_json(detail), prev if linked else "", digest),
    )
    return digest


def test_entries_of_every_schema_verify_as_one_chain(tmp_path):
    """A register upgraded twice holds entries in all three forms; they chain into each other
    and tampering is found in each form."""
    conn = open_store(tmp_path)
    with transaction(conn):
        first = _legacy_entry(conn, GENESIS_HASH, 1, linked=True)
        second = _legacy_entry(conn, first, 2, linked=False)
    assert journal_head(conn).hash == second
    hashes = _fill(conn, 2)
    check = verify_journal(conn)
    assert check.ok and check.entries == 4 and check.last_hash == hashes[-1]
    assert journal_entry(conn, 2).time == T0 + timedelta(seconds=2)
    for seq, tamper in (
        (2, "UPDATE journal SET at = '2026-01-15T10:00:09+02:00' WHERE seq = 2"),
        (1, "UPDATE journal SET prev_hash = hash WHERE seq = 1"),
        (3, "UPDATE journal SET at_s = at_s + 1 WHERE seq = 3"),
    ):
        conn.execute("VACUUM INTO ?", (str(tmp_path / f"tampered-{seq}.db"),))
        tampered = open_store(tmp_path, f"tampered-{seq}.db")
        with transaction(tampered):
            tampered.execute("DROP TRIGGER journal_no_update")
            tampered.execute(tamper)
        assert verify_journal(tampered).first_bad_seq == seq, tamper


def test_triggers_make_the_journal_append_only(tmp_path):
    conn = open_store(tmp_path)
    _fill(conn, 2)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), transaction(conn):
        conn.execute("UPDATE journal SET event = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), transaction(conn):
        conn.execute("DELETE FROM journal WHERE seq = 2")


@pytest.mark.parametrize(
    "tamper",
    [
        'UPDATE journal SET detail = \'{"amount":"9.99","i":3,"text":"Απόδειξη"}\' WHERE seq = 4',
        "UPDATE journal SET at_s = at_s - 3600 WHERE seq = 4",
        "UPDATE journal SET at_us = at_s * 1000000 + 1 WHERE seq = 4",
        "UPDATE journal SET at = '2026-01-15T10:00:03+02:00', at_s = NULL WHERE seq = 4",
        "UPDATE journal SET detail = '{\"i\": 3}' WHERE seq = 4",
        "DELETE FROM journal WHERE seq = 4",
    ],
)
def test_tampering_is_found_at_the_right_entry(tmp_path, tamper):
    conn = open_store(tmp_path)
    _fill(conn, 6)
    with transaction(conn):
        conn.execute("DROP TRIGGER journal_no_update")
        conn.execute("DROP TRIGGER journal_no_delete")
        conn.execute(tamper)
    check = verify_journal(conn)
    assert not check.ok
    expected_bad = 5 if tamper.startswith("DELETE") else 4
    assert check.first_bad_seq == expected_bad


def test_rewriting_an_entry_with_a_fresh_hash_breaks_the_next_link(tmp_path):
    conn = open_store(tmp_path)
    _fill(conn, 3)
    row = conn.execute("SELECT * FROM journal WHERE seq = 2").fetchone()
    forged_detail = {"amount": "0.01", "i": 1, "text": "Απόδειξη"}
    body = canonical_json(
        {
            "seq": 2,
            "at": row["at_s"] * 1_000_000,
            "document_id": None,
            "event": row["event"],
            "detail": forged_detail,
        }
    )
    prev = journal_entry(conn, 1).hash
    forged_hash = hashlib.sha256((prev + body).encode()).digest()
    with transaction(conn):
        conn.execute("DROP TRIGGER journal_no_update")
        conn.execute(
            "UPDATE journal SET detail = ?, digest = ? WHERE seq = 2",
            (canonical_json(forged_detail), forged_hash),
        )
    assert verify_journal(conn).first_bad_seq == 3


def test_incremental_check_resumes_from_a_checkpoint(tmp_path):
    conn = open_store(tmp_path)
    _fill(conn, 5)
    first = verify_journal(conn)
    assert first.ok and first.entries == 5 and first.checkpoint is not None
    hashes = _fill(conn, 3)
    later = verify_journal(conn, after=first.checkpoint)
    assert later.ok and later.entries == 8 and later.last_hash == hashes[-1]
    assert later == verify_journal(conn)


def test_incremental_check_finds_tampering_after_and_at_the_checkpoint(tmp_path):
    conn = open_store(tmp_path)
    _fill(conn, 4)
    checkpoint = verify_journal(conn).checkpoint
    _fill(conn, 2)
    with transaction(conn):
        conn.execute("DROP TRIGGER journal_no_update")
        conn.execute("UPDATE journal SET event = 'forged' WHERE seq = 6")
    assert verify_journal(conn, after=checkpoint).first_bad_seq == 6
    with transaction(conn):
        conn.execute("UPDATE journal SET digest = ? WHERE seq = 4", (b"\xff" * 32,))
    check = verify_journal(conn, after=checkpoint)
    assert not check.ok and check.first_bad_seq == 4 and check.checkpoint is None


def test_a_transaction_keeps_one_hash_and_its_events_as_codes(tmp_path):
    """Only the last entry a transaction wrote keeps its hash; the others' hashes are
    recomputed, the same as `append_journal` returned. Known events are stored as their code."""
    conn = open_store(tmp_path)
    hashes = _transactions(conn, 3, 2)
    rows = conn.execute("SELECT seq, event, code, digest FROM journal ORDER BY seq").fetchall()
    assert [row["digest"] is not None for row in rows] == [False, False, True, False, True]
    assert bytes(rows[2]["digest"]).hex() == hashes[2]
    assert {row["event"] for row in rows} == {""}
    names = dict(conn.execute("SELECT code, name FROM journal_event_names").fetchall())
    assert [names[row["code"]] for row in rows][:2] == ["document.pending", "signature.used"]
    assert [journal_entry(conn, seq).hash for seq in range(1, 6)] == hashes
    assert journal_head(conn).hash == hashes[-1]
    check = verify_journal(conn)
    assert check.ok and check.entries == 5 and check.last_hash == hashes[-1]
    # An event without a code keeps its name; it chains into the coded ones.
    more = _fill(conn, 1, event="closing.z")
    assert tuple(conn.execute("SELECT event, code FROM journal WHERE seq = 6").fetchone()) == (
        "closing.z",
        None,
    )
    assert verify_journal(conn).last_hash == more[0]


@pytest.mark.parametrize(
    ("tamper", "bad"),
    [
        ('UPDATE journal SET detail = \'{"i":9,"job_id":1}\' WHERE seq = 5', 5),
        ("UPDATE journal SET at_s = at_s + 1 WHERE seq = 4", 4),
        ("UPDATE journal SET detail_packed = X'01' WHERE seq = 4", 4),
        ("UPDATE journal SET detail_packed = NULL, detail = '{\"i\":0}' WHERE seq = 4", 4),
        ("UPDATE journal SET code = code + 1 WHERE seq = 5", 4),
        ("UPDATE journal SET event = 'forged' WHERE seq = 6", 4),
        ("UPDATE journal SET document_id = 8 WHERE seq = 6", 4),
        ("DELETE FROM journal WHERE seq = 5", 4),
        ("DELETE FROM journal WHERE seq >= 6", 4),
    ],
)
def test_a_change_inside_a_transaction_is_found_at_its_first_entry(tmp_path, tamper, bad):
    """Entries without a kept hash are proven by their transaction's last one: an edit, a
    removed entry, or the transaction's last entries cut off."""
    conn = open_store(tmp_path)
    _transactions(conn, 3, 3, 2)
    with transaction(conn):
        conn.execute("DROP TRIGGER journal_no_update")
        conn.execute("DROP TRIGGER journal_no_delete")
        conn.execute(tamper)
    check = verify_journal(conn)
    assert not check.ok and check.first_bad_seq == bad, tamper


def test_the_only_update_is_the_newest_but_one_giving_up_its_hash(tmp_path):
    conn = open_store(tmp_path)
    _transactions(conn, 2, 1, 1)
    for update in (
        "UPDATE journal SET digest = NULL WHERE seq = 4",
        "UPDATE journal SET digest = NULL WHERE seq = 2",
        "UPDATE journal SET digest = NULL, detail = '{}' WHERE seq = 3",
        "UPDATE journal SET code = 1 WHERE seq = 1",
        "UPDATE journal SET event = 'x' WHERE seq = 1",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"), transaction(conn):
            conn.execute(update)
    assert verify_journal(conn).ok


def test_a_bounded_check_stops_only_where_a_hash_is_kept(tmp_path):
    conn = open_store(tmp_path)
    hashes = _transactions(conn, 4, 3)
    first = verify_journal(conn, limit=2)
    assert first.ok and not first.complete and first.checkpoint == (4, hashes[3])
    rest = verify_journal(conn, after=first.checkpoint, limit=2)
    assert rest.ok and rest.complete and rest.checkpoint == (7, hashes[6])
    # A checkpoint inside a transaction (an older agent's, or a mark) resumes from its
    # recomputed hash.
    assert verify_journal(conn, after=(5, hashes[4])).ok


def test_entries_written_before_the_codes_verify_with_the_new_ones(tmp_path):
    """A register upgraded to schema 12 holds schema-4 entries (event names, every hash kept);
    they chain into the new ones, and an edit of either is found."""
    from offline_store.migrations import MIGRATIONS, apply_migrations

    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    apply_migrations(conn, MIGRATIONS[:11])
    prev = GENESIS_HASH
    conn.execute("BEGIN")
    for seq in (1, 2):
        detail = {"payload_sha256": "ab" * 32}
        prev = entry_hash(
            prev, seq=seq, at=T0_US, document_id=seq, event="document.pending", detail=detail
        )
        conn.execute(
            "INSERT INTO journal (seq, at, at_us, document_id, event, detail, prev_hash, hash, "
            "digest) VALUES (?, '', ?, ?, 'document.pending', ?, '', '', ?)",
            (seq, T0_US, seq, canonical_json(detail), bytes.fromhex(prev)),
        )
    conn.execute("COMMIT")
    conn.close()
    conn = open_store(tmp_path, "old.db")
    hashes = _transactions(conn, 2)
    check = verify_journal(conn)
    assert check.ok and check.entries == 4 and check.last_hash == hashes[-1]
    assert journal_entry(conn, 2).hash == prev
    # The freeze's record is found in both forms, through the index.
    found = conn.execute(
        "SELECT document_id FROM journal WHERE (code = 2 OR event = 'document.pending') "
        "AND document_id IN (1, 2, 7) ORDER BY seq"
    ).fetchall()
    assert [row[0] for row in found] == [1, 2, 7]
    with transaction(conn):
        conn.execute("DROP TRIGGER journal_no_update")
        conn.execute("UPDATE journal SET at_us = at_us + 1 WHERE seq = 2")
    assert verify_journal(conn).first_bad_seq == 2


def test_a_time_with_microseconds_is_kept_in_microseconds(tmp_path):
    conn = open_store(tmp_path)
    at = T0 + timedelta(microseconds=250)
    with transaction(conn):
        kept = append_journal(conn, "print.queued", {"job_id": 1}, document_id=1, at=at)
    row = conn.execute("SELECT at_us, at_s FROM journal").fetchone()
    assert tuple(row) == (T0_US + 250, None)
    assert journal_entry(conn, 1).time == at and verify_journal(conn).last_hash == kept


def test_event_codes_are_read_once_per_connection_and_a_name_without_one_stays_a_name(tmp_path):
    conn = open_store(tmp_path)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    for _ in range(2):
        with transaction(conn):
            append_journal(conn, "document.accepted", {}, document_id=None, at=T0)
            append_journal(conn, "technician.note", {"text": "ok"}, document_id=None, at=T0)
    conn.set_trace_callback(None)
    lookups = [s for s in statements if "journal_event_names" in s]
    assert len(lookups) == 2  # one per name, the first time
    stored = conn.execute("SELECT event, code FROM journal ORDER BY seq").fetchall()
    # document.accepted is code 4 (schema 12)
    assert [tuple(row) for row in stored][-2:] == [("", 4), ("technician.note", None)]
    assert verify_journal(conn).ok


def test_a_transactions_later_entries_link_to_its_own_without_reading_the_head(tmp_path):
    """The head is read once per transaction: its later entries link to the entry it wrote
    (it holds the write lock), and the next transaction reads the head from the file again,
    where another connection may have appended in between."""
    conn, other = open_store(tmp_path), open_store(tmp_path)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    for writer in (conn, other, conn):
        with transaction(writer):
            for event in ("document.accepted", "print.queued", "print.printing"):
                append_journal(writer, event, {}, document_id=7, at=T0)
    conn.set_trace_callback(None)
    reads = [s for s in statements if s.startswith("SELECT seq, hash, digest FROM journal")]
    assert len(reads) == 2  # one per transaction of `conn`
    check = verify_journal(conn)
    assert check.ok and check.entries == 9
    kept = conn.execute("SELECT seq FROM journal WHERE digest IS NOT NULL ORDER BY seq")
    assert [row[0] for row in kept] == [3, 6, 9]


def test_an_entry_whose_predecessor_keeps_its_hash_is_still_the_one_linked_to(tmp_path):
    """The entry before keeps its hash when giving it up is refused (the statement fails after
    the new entry was written): an append that goes on in the same transaction links to the new
    entry, and the chain verifies."""
    conn = open_store(tmp_path)
    conn.execute(
        "CREATE TEMP TRIGGER refuse_drop BEFORE UPDATE ON main.journal "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with transaction(conn):
        append_journal(conn, "print.queued", {"job_id": 1}, document_id=7, at=T0)
        with pytest.raises(sqlite3.IntegrityError, match="refused"):
            append_journal(conn, "print.printing", {"job_id": 1}, document_id=7, at=T0)
        conn.execute("DROP TRIGGER temp.refuse_drop")
        append_journal(conn, "print.printed", {"job_id": 1}, document_id=7, at=T0)
    kept = conn.execute("SELECT seq FROM journal WHERE digest IS NOT NULL ORDER BY seq")
    assert [row[0] for row in kept] == [1, 3]
    check = verify_journal(conn)
    assert check.ok and check.entries == 3
