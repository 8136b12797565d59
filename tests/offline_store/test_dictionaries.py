"""Packing dictionaries learned from the register's own receipts: smaller rows, the same bytes
back, never changed, a first short one replaced by a full one, then relearned monthly, and a
damaged one found by the integrity check."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

import offline_store as store
from offline_store.dictionaries import (
    FUTURE_SLACK,
    LEARNED_EVENT,
    MIN_DOCUMENTS,
    RELEARN_AFTER,
    SAMPLE_BYTES,
    current_packing,
)
from tests.offline_store.factory import T0, builder, cafe_payload, issue_cafe, open_store


def _stored_payload_bytes(conn: sqlite3.Connection, ids: list[int]) -> int:
    marks = ",".join("?" * len(ids))
    return int(
        conn.execute(
            f"SELECT sum(length(payload)) FROM documents WHERE id IN ({marks})",  # noqa: S608
            ids,
        ).fetchone()[0]
    )


def _learn(conn: sqlite3.Connection, now: object = T0) -> store.LearnedDictionary | None:
    with store.transaction(conn):
        return store.learn_dictionary(conn, now=now)  # type: ignore[arg-type]


def test_nothing_is_learned_from_too_few_receipts(tmp_path: Path) -> None:
    conn = open_store(tmp_path)
    issue_cafe(conn, 0, MIN_DOCUMENTS - 1)
    assert _learn(conn) is None
    assert current_packing(conn).dictionary_id is None


def test_a_learned_dictionary_packs_new_receipts_smaller_to_the_same_bytes(tmp_path: Path) -> None:
    conn = open_store(tmp_path)
    before = issue_cafe(conn, 0, 40)
    learned = _learn(conn)
    assert learned is not None and learned.documents >= MIN_DOCUMENTS
    after = issue_cafe(conn, 40, 40)
    # The same kind of receipts, packed with the register's own sample: much smaller.
    assert _stored_payload_bytes(conn, after) < 0.6 * _stored_payload_bytes(conn, before)
    for index, doc_id in enumerate(after, start=40):
        doc = store.get_document(conn, doc_id)
        assert doc is not None and doc.pack_dict == learned.id
        assert doc.payload == cafe_payload(index)
        assert doc.request_json == f'{{"request_id":"r{index}"}}'
    assert store.altered_payloads(conn, states=None) == []
    # The dictionary's digest is in the hash chain.
    row = conn.execute("SELECT detail FROM journal WHERE event = ?", (LEARNED_EVENT,)).fetchone()
    sample = conn.execute("SELECT sample FROM pack_dictionaries").fetchone()[0]
    assert json.loads(row[0])["sha256"] == hashlib.sha256(sample).hexdigest()
    assert store.verify_journal(conn).ok
    # The connection read the 16 KB sample once, not once per document.
    assert conn.learned_dictionaries == {learned.id: sample}  # type: ignore[attr-defined]


def test_a_new_dictionary_only_after_a_month_and_old_rows_still_unpack(tmp_path: Path) -> None:
    conn = open_store(tmp_path)
    issue_cafe(conn, 0, 10)
    first = _learn(conn)
    assert first is not None
    packed_first = issue_cafe(conn, 10, 5)
    assert _learn(conn, T0 + RELEARN_AFTER - timedelta(seconds=1)) is None
    issue_cafe(conn, 15, 10, now=T0 + RELEARN_AFTER)
    second = _learn(conn, T0 + RELEARN_AFTER)
    assert second is not None and second.id != first.id
    assert current_packing(conn).dictionary_id == second.id
    for index, doc_id in enumerate(packed_first, start=10):
        doc = store.get_document(conn, doc_id)
        assert doc is not None and doc.pack_dict == first.id and doc.payload == cafe_payload(index)


def _dictionary_ids(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT id FROM pack_dictionaries ORDER BY id")]


def test_a_first_short_dictionary_gives_way_to_a_full_one_once_then_waits_a_month(
    tmp_path: Path,
) -> None:
    """A new register learns from its first few receipts, then once from a full sample as soon
    as its receipts fill one (not a month later), and no more before the month: however often
    it looks, a register keeps at most two dictionaries a month."""
    conn = open_store(tmp_path)
    early = issue_cafe(conn, 0, MIN_DOCUMENTS)
    first = _learn(conn)
    assert first is not None and first.documents == MIN_DOCUMENTS and first.bytes < SAMPLE_BYTES
    short = issue_cafe(conn, MIN_DOCUMENTS, 6)
    assert _learn(conn, T0 + timedelta(seconds=1)) is None  # still no full sample: kept
    sold = MIN_DOCUMENTS + 6
    full, at = None, T0
    while full is None and sold < 60:  # a few receipts a second, as a till sells them
        issue_cafe(conn, sold, 3)
        sold, at = sold + 3, at + timedelta(seconds=1)
        full = _learn(conn, at)
    # As soon as the ~600-byte payloads fill the sample, not a month later.
    assert full is not None and full.id != first.id and full.bytes == SAMPLE_BYTES
    assert sold * 600 < 2 * SAMPLE_BYTES
    assert current_packing(conn).dictionary_id == full.id
    for minute in range(1, 60):
        issue_cafe(conn, sold, 3, now=T0 + timedelta(minutes=minute))
        sold += 3
        assert _learn(conn, T0 + timedelta(minutes=minute)) is None
    assert _learn(conn, at + RELEARN_AFTER - timedelta(seconds=1)) is None
    assert _dictionary_ids(conn) == [first.id, full.id]
    learned = conn.execute("SELECT detail FROM journal WHERE event = ?", (LEARNED_EVENT,))
    assert [json.loads(row[0])["bytes"] for row in learned] == [first.bytes, full.bytes]
    assert store.verify_journal(conn).ok
    # The rows packed with the short one and with none still read back and pass the check.
    for index, doc_id in enumerate(short, start=MIN_DOCUMENTS):
        doc = store.get_document(conn, doc_id)
        assert doc is not None and doc.pack_dict == first.id and doc.payload == cafe_payload(index)
    for index, doc_id in enumerate(early):
        doc = store.get_document(conn, doc_id)
        assert doc is not None and doc.pack_dict is None and doc.payload == cafe_payload(index)
    assert store.altered_payloads(conn, states=None) == []
    third = _learn(conn, at + RELEARN_AFTER)
    assert third is not None and third.bytes == SAMPLE_BYTES


def test_a_dictionary_dated_ahead_of_a_clock_stepped_back_does_not_hold_the_next_off(
    tmp_path: Path,
) -> None:
    """Learned while the clock was a year ahead, then NTP steps it back: the register learns
    again at once rather than keeping it until the clock catches up; a few hours of drift
    back do not."""
    conn = open_store(tmp_path)
    ahead = T0 + timedelta(days=365)
    issue_cafe(conn, 0, 40, now=ahead)
    first = _learn(conn, ahead)
    assert first is not None and first.bytes == SAMPLE_BYTES
    assert _learn(conn, ahead - FUTURE_SLACK + timedelta(hours=1)) is None
    second = _learn(conn, T0)
    assert second is not None and second.id != first.id
    assert _learn(conn, T0 + timedelta(days=1)) is None
    assert _dictionary_ids(conn) == [first.id, second.id]


def test_dictionaries_and_the_rows_packed_with_them_never_change(tmp_path: Path) -> None:
    conn = open_store(tmp_path)
    issue_cafe(conn, 0, 10)
    learned = _learn(conn)
    assert learned is not None
    (doc_id,) = issue_cafe(conn, 10, 1)
    with pytest.raises(sqlite3.IntegrityError, match="never changes"), store.transaction(conn):
        conn.execute("UPDATE pack_dictionaries SET sample = x'00'")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"), store.transaction(conn):
        conn.execute("DELETE FROM pack_dictionaries")
    with pytest.raises(sqlite3.IntegrityError, match="stays packed"), store.transaction(conn):
        conn.execute("UPDATE documents SET pack_dict = NULL WHERE id = ?", (doc_id,))


def test_a_damaged_dictionary_shows_as_altered_payloads(tmp_path: Path) -> None:
    """Bytes changed on disk under the triggers: every receipt packed with the dictionary is
    reported altered (never sent), the ones packed before it are intact."""
    conn = open_store(tmp_path)
    plain = issue_cafe(conn, 0, 10)
    _learn(conn)
    learned = issue_cafe(conn, 10, 5)
    sample = conn.execute("SELECT sample FROM pack_dictionaries").fetchone()[0]
    damaged = sample.replace("ΚΑΦΕΝΕΙΟ".encode(), "ΚΑΦΕΝΕΙΑ".encode())
    assert damaged != sample
    with store.transaction(conn):
        conn.execute("DROP TRIGGER pack_dictionaries_fixed")
        conn.execute("UPDATE pack_dictionaries SET sample = ?", (damaged,))
    altered = store.altered_payloads(conn, states=None)
    assert set(altered) == set(learned)
    assert not set(altered) & set(plain)


def test_a_receipt_naming_its_customer_never_goes_into_a_dictionary(tmp_path: Path) -> None:
    """Dictionaries are kept for ever; the customer's details leave with the receipt."""
    conn = open_store(tmp_path)
    issue_cafe(conn, 0, 6)
    customer = (
        '{"request_id":"named","customer":{"name":"ΠΑΠΑΔΟΠΟΥΛΟΣ ΙΩΑΝΝΗΣ","vat":"EL123456783"}}'
    )
    build = builder(
        "named", payload=cafe_payload(99).replace("Ερμού".encode(), "Πελάτου 9".encode())
    )

    def named(number: int) -> store.NewDocument:
        return dataclasses.replace(build(number), request_json=customer)

    with store.transaction(conn):
        store.insert_document(conn, "A", named, now=T0)
    assert _learn(conn) is not None
    sample = conn.execute("SELECT sample FROM pack_dictionaries").fetchone()[0]
    assert "ΠΑΠΑΔΟΠΟΥΛΟΣ".encode() not in sample and "Πελάτου".encode() not in sample
    assert "Ερμού".encode() in sample  # the other receipts were sampled
