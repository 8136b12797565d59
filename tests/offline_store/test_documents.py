import json
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from offline_store import (
    DocumentKind,
    DocumentState,
    InvalidTransition,
    NotFound,
    abandoned_reservations,
    document_ids_due,
    extend_reservation,
    freeze_payload,
    get_by_request_id,
    get_document,
    insert_document,
    journal_entries,
    list_documents,
    mark_accepted,
    mark_delayed,
    mark_rejected,
    take_over_reservation,
    transaction,
    unsent_document_ids,
    verify_journal,
    void_reservation,
)
from tests.offline_store.factory import ATHENS_SUMMER, ATHENS_WINTER, T0, builder, issue, open_store

T1 = T0 + timedelta(minutes=1)
DUE = T0 + timedelta(days=1, hours=14)


@pytest.fixture
def conn(tmp_path):
    connection = open_store(tmp_path)
    yield connection
    connection.close()


def conn_path(conn: sqlite3.Connection) -> Path:
    """The directory of the file `conn` has open (a second connection reads it from disk)."""
    return Path(conn.execute("PRAGMA database_list").fetchone()[2]).parent


def _events(conn: sqlite3.Connection, document_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT event FROM journal_named WHERE document_id = ? ORDER BY seq", (document_id,)
    )
    return [row[0] for row in rows]


def test_insert_pending_round_trips_python_types(conn):
    doc = issue(conn, "r1", payload=b"\x00exact bytes\xff")
    assert doc.state is DocumentState.PENDING
    assert doc.kind is DocumentKind.RECEIPT
    assert (doc.series, doc.number, doc.uid, doc.internal_id) == ("A", 1, "UID-A-1", "INT-A-1")
    assert doc.payload == b"\x00exact bytes\xff"
    assert doc.total_amount == Decimal("12.40")
    assert str(doc.total_amount) == "12.40"
    assert doc.issued_at == T0
    assert doc.issued_at.utcoffset() == timedelta(hours=2)
    assert (doc.attempts, doc.delayed_code, doc.mark, doc.mark_unknown) == (0, 0, None, False)
    assert get_document(conn, doc.id) == doc
    assert get_by_request_id(conn, "r1") == doc
    assert _events(conn, doc.id) == ["document.pending"]
    stored = conn.execute("SELECT total_amount, issued_at FROM documents").fetchone()
    assert tuple(stored) == ("12.40", "2026-01-15T10:00:00+02:00")


@pytest.mark.parametrize(
    ("request_hash", "payload", "reserved_until", "issued_later"),
    [
        ("ab" * 32, b'{"frozen":true}', None, False),
        ("AB" * 32, b'{"frozen":true}', None, True),
        ("not-a-digest", None, T1, False),
    ],
)
def test_an_inserted_document_is_the_row_read_back(
    conn, request_hash, payload, reserved_until, issued_later
):
    """`insert_document` gives back the row it wrote: the same document,
    to its time zones and decimal scale, as a read of the row from the file."""
    athens = ZoneInfo("Europe/Athens")
    issued_at = datetime(2026, 7, 1, 9, 30, tzinfo=athens)
    build = builder("r1", payload=payload, total=Decimal("5.0"), issued_at=issued_at)
    new = replace(build(1), request_hash=request_hash, reserved_until=reserved_until)
    now = issued_at + timedelta(seconds=1) if issued_later else issued_at
    with transaction(conn):
        inserted = insert_document(conn, "A", lambda _: new, now=now)
    reopened = open_store(conn_path(conn))
    assert repr(inserted) == repr(get_document(reopened, inserted.id))
    reopened.close()


def test_naive_times_and_float_money_are_refused(conn):
    with pytest.raises(ValueError, match="naive"), transaction(conn):
        insert_document(conn, "A", builder("r1"), now=T0.replace(tzinfo=None))
    with pytest.raises(TypeError, match="Decimal"), transaction(conn):
        insert_document(conn, "A", builder("r2", total=12.4), now=T0)  # type: ignore[arg-type]
    assert list_documents(conn) == []


def test_online_path_reserved_pending_accepted(conn):
    doc = issue(conn, "r1", payload=None, reserved_until=T0 + timedelta(minutes=5))
    assert doc.state is DocumentState.RESERVED
    assert doc.payload is None
    with transaction(conn):
        doc = freeze_payload(conn, doc.id, b"payload", now=T1)
    assert (doc.state, doc.payload, doc.reserved_until, doc.updated_at) == (
        DocumentState.PENDING,
        b"payload",
        None,
        T1,
    )
    with transaction(conn):
        doc = mark_accepted(
            conn, doc.id, mark=400001, authentication_code="AUTH", qr_url="https://q", now=T1
        )
    assert (doc.state, doc.mark, doc.mark_unknown, doc.authentication_code, doc.qr_url) == (
        DocumentState.ACCEPTED,
        400001,
        False,
        "AUTH",
        "https://q",
    )
    assert _events(conn, doc.id) == ["document.reserved", "document.pending", "document.accepted"]
    assert verify_journal(conn).ok


def test_offline_path_delayed_twice_then_accepted_with_unknown_mark(conn):
    doc = issue(conn, "r1")
    with transaction(conn):
        doc = mark_delayed(
            conn,
            doc.id,
            code=1,
            due_at=DUE,
            next_attempt_at=T1,
            error="timeout",
            now=T0,
            offline_qr_url="https://portal/TransmissionFailure?x",
        )
    assert (doc.state, doc.delayed_code, doc.attempts, doc.due_at, doc.next_attempt_at) == (
        DocumentState.DELAYED,
        1,
        1,
        DUE,
        T1,
    )
    with transaction(conn):
        doc = mark_delayed(
            conn,
            doc.id,
            code=2,
            due_at=DUE,
            next_attempt_at=None,
            error="408",
            now=T1,
            offline_qr_url="https://portal/TransmissionFailure?later",
        )
    assert (doc.state, doc.delayed_code, doc.attempts, doc.next_attempt_at, doc.last_error) == (
        DocumentState.DELAYED,
        2,
        2,
        None,
        "408",
    )
    assert doc.offline_qr_url == "https://portal/TransmissionFailure?x"
    delayed_details = [
        json.loads(entry.detail)
        for entry in journal_entries(conn, after=0)
        if entry.document_id == doc.id and entry.event == "document.delayed"
    ]
    assert [d.get("offline_qr_url") for d in delayed_details] == [
        "https://portal/TransmissionFailure?x",
        None,
    ]
    with transaction(conn):
        doc = mark_accepted(conn, doc.id, mark=None, authentication_code=None, qr_url=None, now=T1)
    assert (doc.state, doc.mark, doc.mark_unknown, doc.last_error) == (
        DocumentState.ACCEPTED,
        None,
        True,
        None,
    )
    assert _events(conn, doc.id) == [
        "document.pending",
        "document.delayed",
        "document.delayed",
        "document.accepted",
    ]


def test_rejected_and_void(conn):
    sent = issue(conn, "r1")
    reserved = issue(conn, "r2", payload=None)
    with transaction(conn):
        sent = mark_rejected(conn, sent.id, error="400 invalid VAT", now=T1)
        reserved = void_reservation(conn, reserved.id, reason="card declined", now=T1)
    assert (sent.state, sent.last_error) == (DocumentState.REJECTED, "400 invalid VAT")
    assert (reserved.state, reserved.last_error, reserved.payload) == (
        DocumentState.VOID,
        "card declined",
        None,
    )


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ("reserved", "mark_accepted"),
        ("reserved", "mark_delayed"),
        ("reserved", "mark_rejected"),
        ("pending", "freeze_payload"),
        ("pending", "void_reservation"),
        ("pending", "extend_reservation"),
        ("accepted", "mark_accepted"),
        ("accepted", "mark_delayed"),
        ("accepted", "mark_rejected"),
        ("rejected", "mark_accepted"),
        ("rejected", "mark_delayed"),
        ("void", "freeze_payload"),
        ("void", "take_over_reservation"),
    ],
)
def test_invalid_transitions_are_refused_and_change_nothing(conn, state, action):
    doc = _in_state(conn, state)
    calls = {
        "freeze_payload": lambda: freeze_payload(conn, doc.id, b"p", now=T1),
        "mark_accepted": lambda: mark_accepted(
            conn, doc.id, mark=1, authentication_code=None, qr_url=None, now=T1
        ),
        "mark_delayed": lambda: mark_delayed(
            conn, doc.id, code=1, due_at=DUE, next_attempt_at=None, error="e", now=T1
        ),
        "mark_rejected": lambda: mark_rejected(conn, doc.id, error="e", now=T1),
        "void_reservation": lambda: void_reservation(conn, doc.id, reason="r", now=T1),
        "extend_reservation": lambda: extend_reservation(conn, doc.id, reserved_until=DUE, now=T1),
        "take_over_reservation": lambda: take_over_reservation(
            conn,
            doc.id,
            request_id="other",
            request_hash="h",
            request_json="{}",
            total_amount=Decimal("1.00"),
            reserved_until=DUE,
            now=T1,
        ),
    }
    with pytest.raises(InvalidTransition, match=f"is {state}"), transaction(conn):
        calls[action]()
    assert get_document(conn, doc.id) == doc


def test_unknown_document_and_bad_delayed_code(conn):
    with pytest.raises(NotFound), transaction(conn):
        mark_rejected(conn, 999, error="e", now=T1)
    doc = issue(conn, "r1")
    with pytest.raises(ValueError, match="1 or 2"), transaction(conn):
        mark_delayed(conn, doc.id, code=0, due_at=DUE, next_attempt_at=None, error="e", now=T1)


def test_database_guards_frozen_payload_identity_and_deletion(conn):
    doc = issue(conn, "r1")
    with pytest.raises(sqlite3.IntegrityError, match="frozen payload"), transaction(conn):
        conn.execute("UPDATE documents SET payload = x'00' WHERE id = ?", (doc.id,))
    with pytest.raises(sqlite3.IntegrityError, match="identity"), transaction(conn):
        conn.execute("UPDATE documents SET uid = 'other' WHERE id = ?", (doc.id,))
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"), transaction(conn):
        conn.execute("DELETE FROM documents")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"), transaction(conn):
        conn.execute("UPDATE documents SET state = 'reserved' WHERE id = ?", (doc.id,))
    assert get_document(conn, doc.id) == doc


def test_duplicate_request_id_is_refused(conn):
    issue(conn, "r1")
    with pytest.raises(sqlite3.IntegrityError), transaction(conn):
        insert_document(conn, "A", builder("r1"), now=T0)


def test_reservations_extend_take_over_and_abandon(conn):
    old = issue(conn, "r1", payload=None, reserved_until=T0 + timedelta(minutes=5))
    live = issue(conn, "r2", payload=None, reserved_until=T0 + timedelta(minutes=30))
    issue(conn, "r3", series="B", payload=None, reserved_until=T0)
    later = T0 + timedelta(minutes=10)
    assert [d.id for d in abandoned_reservations(conn, series="A", before=later)] == [old.id]
    with transaction(conn):
        live = extend_reservation(conn, live.id, reserved_until=T0 + timedelta(hours=1), now=later)
        taken = take_over_reservation(
            conn,
            old.id,
            request_id="r9",
            request_hash="hash-r9",
            request_json='{"request_id":"r9"}',
            total_amount=Decimal("3.10"),
            reserved_until=later + timedelta(minutes=5),
            now=later,
        )
    assert live.reserved_until == T0 + timedelta(hours=1)
    assert (taken.request_id, taken.number, taken.uid, taken.total_amount) == (
        "r9",
        old.number,
        old.uid,
        Decimal("3.10"),
    )
    assert get_by_request_id(conn, "r1") is None
    assert abandoned_reservations(conn, series="A", before=later) == []
    (journal,) = [
        entry.detail
        for entry in journal_entries(conn, after=0)
        if entry.event == "document.taken_over"
    ]
    assert '"previous_request_id":"r1"' in journal


def test_due_and_unsent_queries_compare_instants_across_dst(conn):
    # 03:30+03:00 (summer) is 00:30 UTC: earlier than 02:45+02:00 (00:45 UTC) despite the text.
    summer_early = T0.replace(month=3, day=29, hour=3, minute=30, tzinfo=ATHENS_SUMMER)
    now = summer_early.replace(hour=2, minute=45, tzinfo=ATHENS_WINTER)
    fresh = issue(conn, "fresh")
    due = issue(conn, "due")
    later = issue(conn, "later")
    sent = issue(conn, "sent")
    with transaction(conn):
        mark_delayed(
            conn, due.id, code=1, due_at=DUE, next_attempt_at=summer_early, error="e", now=T0
        )
        mark_delayed(
            conn,
            later.id,
            code=1,
            due_at=DUE,
            next_attempt_at=now + timedelta(seconds=1),
            error="e",
            now=T0,
        )
        mark_accepted(conn, sent.id, mark=1, authentication_code=None, qr_url=None, now=T0)
    assert document_ids_due(conn, now, 10) == [fresh.id, due.id]
    assert document_ids_due(conn, now, 1) == [fresh.id]
    assert unsent_document_ids(conn) == [fresh.id]


def test_list_documents_newest_first_with_state_filter_and_paging(conn):
    docs = [issue(conn, f"r{i}") for i in range(5)]
    with transaction(conn):
        mark_rejected(conn, docs[1].id, error="e", now=T1)
    assert [d.id for d in list_documents(conn)] == [d.id for d in reversed(docs)]
    assert [d.id for d in list_documents(conn, limit=2, offset=1)] == [docs[3].id, docs[2].id]
    assert [d.id for d in list_documents(conn, state=DocumentState.REJECTED)] == [docs[1].id]


def _in_state(conn: sqlite3.Connection, state: str):
    if state in ("reserved", "void"):
        doc = issue(conn, "x", payload=None)
        if state == "void":
            with transaction(conn):
                doc = void_reservation(conn, doc.id, reason="r", now=T0)
        return doc
    doc = issue(conn, "x")
    with transaction(conn):
        if state == "accepted":
            doc = mark_accepted(conn, doc.id, mark=5, authentication_code=None, qr_url=None, now=T0)
        elif state == "rejected":
            doc = mark_rejected(conn, doc.id, error="e", now=T0)
    return doc


def test_a_sale_is_unpacked_once_and_a_changed_byte_is_never_answered_from_memory(
    conn, tmp_path, monkeypatch
):
    """The connection remembers what it packed and unpacked, by the packed bytes: reads of a
    just-issued document unpack nothing, another connection reads the same text, and a payload
    changed under SQLite reads as changed."""
    from offline_store import PackedDataDamaged, documents
    from offline_store.packing import pack
    from tests.offline_store.factory import cafe_payload

    unpacked: list[bytes] = []
    real_unpack = documents.unpack
    monkeypatch.setattr(
        documents,
        "unpack",
        lambda stored, *a, **k: unpacked.append(stored) or real_unpack(stored, *a, **k),
    )
    doc = issue(conn, "r-1", payload=cafe_payload(1))
    with transaction(conn):
        accepted = mark_accepted(
            conn, doc.id, mark=400001, authentication_code="A", qr_url=None, now=T1
        )
    again = get_document(conn, doc.id)
    assert unpacked == []
    assert (accepted.payload, again.payload) == (cafe_payload(1), cafe_payload(1))
    other = open_store(tmp_path)
    fresh = get_document(other, doc.id)
    assert (fresh.request_json, fresh.payload) == (doc.request_json, doc.payload)
    assert len(unpacked) == 2  # the other connection unpacked the payload and the request

    conn.execute("DROP TRIGGER documents_payload_frozen")
    conn.execute("UPDATE documents SET payload = ? WHERE id = ?", (pack(b'{"altered":1}'), doc.id))
    with pytest.raises(PackedDataDamaged):  # its request was packed against the old payload
        get_document(conn, doc.id)
