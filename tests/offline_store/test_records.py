import base64
import sqlite3
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from offline_store import (
    InvalidTransition,
    SignatureStatus,
    add_signature,
    find_request,
    get_document,
    get_signature,
    insert_document,
    mark_signature_used,
    remember_request,
    supersede_signatures,
    transaction,
)
from offline_store.columns import time_to_db
from offline_store.database import open_database
from offline_store.migrations import MIGRATIONS, apply_migrations, schema_version
from offline_store.packing import pack_answer
from tests.offline_store.factory import T0, builder, issue, open_store


@pytest.fixture
def conn(tmp_path):
    connection = open_store(tmp_path)
    yield connection
    connection.close()


def _sign(conn, document_id: int, request_id: str):
    return add_signature(
        conn,
        document_id=document_id,
        request_id=request_id,
        terminal_id="T-1",
        amount=Decimal("12.40"),
        tip=Decimal("0.60"),
        input="UID;MARK;12.40;0.60",
        signature="MEUCIQ...",
        duration_type="H_24",
        expires_at=T0 + timedelta(hours=24),
        now=T0,
    )


def test_request_record_round_trips_exact_money(conn):
    assert find_request(conn, "p1") is None
    response = {"amount": Decimal("12.40"), "ok": True, "items": [Decimal("0.10"), "Ω", None]}
    with transaction(conn):
        stored = remember_request(
            conn,
            request_id="p1",
            endpoint="/v1/payments/sign",
            body_hash="abc",
            created=True,
            response=response,
            document_id=None,
            now=T0,
        )
    assert find_request(conn, "p1") == stored
    assert stored.response == response
    assert str(stored.response["amount"]) == "12.40"
    assert (stored.endpoint, stored.body_hash, stored.created, stored.created_at) == (
        "/v1/payments/sign",
        "abc",
        True,
        T0,
    )
    with pytest.raises(sqlite3.IntegrityError), transaction(conn):
        remember_request(
            conn,
            request_id="p1",
            endpoint="/v1/payments/sign",
            body_hash="other",
            created=True,
            response={},
            document_id=None,
            now=T0,
        )


@pytest.mark.parametrize(
    ("amount", "error"),
    [(Decimal("NaN"), ValueError), (12.4, TypeError), ([Decimal("1.00"), 0.5], TypeError)],
)
def test_request_response_refuses_values_without_exact_json(conn, amount, error):
    with pytest.raises(error), transaction(conn):
        remember_request(
            conn,
            request_id="p1",
            endpoint="/x",
            body_hash="h",
            created=False,
            response={"amount": amount},
            document_id=None,
            now=T0,
        )
    assert find_request(conn, "p1") is None


def test_signature_lifecycle(conn):
    doc = issue(conn, "r1", payload=None)
    with transaction(conn):
        first = _sign(conn, doc.id, "s1")
    assert get_signature(conn, first.id) == first
    assert (first.amount, first.tip, first.status) == (
        Decimal("12.40"),
        Decimal("0.60"),
        SignatureStatus.ACTIVE,
    )
    with transaction(conn):
        assert supersede_signatures(conn, doc.id, now=T0) == 1
        second = _sign(conn, doc.id, "s2")
    assert get_signature(conn, first.id).status is SignatureStatus.SUPERSEDED
    assert second.status is SignatureStatus.ACTIVE
    with transaction(conn):
        used = mark_signature_used(conn, second.id, now=T0)
    assert used.status is SignatureStatus.USED
    assert get_signature(conn, second.id) == used
    with pytest.raises(InvalidTransition), transaction(conn):
        mark_signature_used(conn, second.id, now=T0)
    events = [r[0] for r in conn.execute("SELECT event FROM journal_named WHERE event LIKE 'sig%'")]
    assert events == [
        "signature.added",
        "signature.superseded",
        "signature.added",
        "signature.used",
    ]


def test_answers_remembered_before_schema_11_keep_whether_they_created(tmp_path):
    """Rows written when the store recorded HTTP's status (201 for a call that created
    something, 200 otherwise) read back as `created` after the migration, answers intact."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    apply_migrations(old, MIGRATIONS[:10])
    answer = '{"kick_id":3,"state":"queued","amount":12.40}'
    for request_id, status in (("made", 201), ("found", 200)):
        old.execute(
            "INSERT INTO api_requests (request_id, endpoint, body_hash, status_code, response, "
            "response_packed, document_id, created_at) VALUES (?, 'drawer.open', 'h', ?, '', ?, "
            "NULL, ?)",
            (request_id, status, pack_answer(answer), time_to_db(T0)),
        )
    old.close()

    conn = open_database(path, now=T0)
    assert schema_version(conn) == MIGRATIONS[-1].version
    made, found = find_request(conn, "made"), find_request(conn, "found")
    assert made is not None and found is not None
    assert (made.created, found.created) == (True, False)
    assert made.response == {"kick_id": 3, "state": "queued", "amount": Decimal("12.40")}
    columns = {row[1] for row in conn.execute("PRAGMA table_info(api_requests)")}
    assert "status_code" not in columns
    with pytest.raises(sqlite3.IntegrityError), transaction(conn):
        conn.execute("UPDATE api_requests SET created = 201 WHERE request_id = 'made'")


def test_request_hashes_are_stored_as_32_bytes_and_old_text_ones_still_read(tmp_path):
    """New rows keep a request's and an answer's SHA-256 as 32 bytes (the text column ''); rows
    written before schema 13 keep their 64 characters and read back the same."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    apply_migrations(old, MIGRATIONS[:12])
    text_hash = "ab" * 32
    old.execute(
        "INSERT INTO api_requests (request_id, endpoint, body_hash, created, response, "
        "response_packed, document_id, created_at) VALUES ('before', 'drawer.open', ?, 1, '', ?, "
        "NULL, ?)",
        (text_hash, pack_answer('{"kick_id":3}'), time_to_db(T0)),
    )
    old.close()
    conn = open_database(path, now=T0)
    assert find_request(conn, "before").body_hash == text_hash
    new_hash = "0123456789abcdef" * 4
    with transaction(conn):
        remember_request(
            conn,
            request_id="after",
            endpoint="drawer.open",
            body_hash=new_hash,
            created=True,
            response={"kick_id": 4},
            document_id=None,
            now=T0,
        )
    build = builder("r1")
    with transaction(conn):
        doc = insert_document(
            conn, "A", lambda number: replace(build(number), request_hash=new_hash), now=T0
        )
    assert get_document(conn, doc.id).request_hash == new_hash
    assert find_request(conn, "after").body_hash == new_hash
    stored = conn.execute(
        "SELECT body_hash, body_digest FROM api_requests WHERE request_id = 'after'"
    ).fetchone()
    assert (stored[0], bytes(stored[1]).hex()) == ("", new_hash)
    row = conn.execute(
        "SELECT request_hash, length(request_digest) FROM documents WHERE id = ?", (doc.id,)
    ).fetchone()
    assert tuple(row) == ("", 32)


def test_a_signature_row_keeps_the_provider_signature_as_bytes_and_its_input_without_the_uid(
    conn,
):
    """The texts read back exactly; what is stored is the signature's bytes and the input
    after the receipt's UID. A signature that is not exact base64, or an input that does not
    start with the UID, stays text."""
    doc = issue(conn, "r1", payload=None, reserved_until=T0 + timedelta(minutes=5))
    signature = base64.b64encode(bytes(range(70))).decode()
    signed_input = f"{doc.uid};;20260115100000;1000;240;1240;1240;T-1"
    with transaction(conn):
        kept = add_signature(
            conn,
            document_id=doc.id,
            request_id="s1",
            terminal_id="T-1",
            amount=Decimal("12.40"),
            tip=Decimal("0"),
            input=signed_input,
            signature=signature,
            duration_type="H_24",
            expires_at=None,
            now=T0,
        )
        odd = _sign(conn, doc.id, "s2")
    assert (kept.input, kept.signature) == (signed_input, signature)
    assert get_signature(conn, kept.id) == kept
    row = conn.execute(
        "SELECT input, input_uid, signature, length(signature_raw) FROM payment_signatures "
        "WHERE id = ?",
        (kept.id,),
    ).fetchone()
    assert tuple(row) == (signed_input[len(doc.uid) :], 1, "", 70)
    assert (odd.input, odd.signature) == ("UID;MARK;12.40;0.60", "MEUCIQ...")
    assert tuple(
        conn.execute(
            "SELECT input_uid, signature_raw FROM payment_signatures WHERE id = ?", (odd.id,)
        ).fetchone()
    ) == (None, None)
    # A text written beside the bytes changes what is read: a payload packed against the row
    # no longer checks.
    with transaction(conn):
        conn.execute("UPDATE payment_signatures SET signature = 'A' WHERE id = ?", (kept.id,))
    assert get_signature(conn, kept.id).signature == "A" + signature
