"""A frozen payload is compared with the SHA-256 journaled when it was frozen."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import offline_store as store
from offline_store.packing import pack
from tests.offline_store.factory import T0, issue, open_store


def test_an_intact_payload_passes_and_a_changed_one_is_found(tmp_path: Path) -> None:
    conn = open_store(tmp_path)
    doc = issue(conn, "r-1", payload=b'{"total":"12.40"}')
    other = issue(conn, "r-2")
    assert store.payload_intact(conn, doc.id, doc.payload)
    assert store.altered_payloads(conn) == []
    # What a flipped bit under SQLite looks like from above: the triggers never saw an UPDATE.
    conn.execute("DROP TRIGGER documents_payload_frozen")
    changed = pack(b'{"total":"92.40"}')
    conn.execute("UPDATE documents SET payload = ? WHERE id = ?", (changed, doc.id))
    assert not store.payload_intact(conn, doc.id, b'{"total":"92.40"}')
    assert store.altered_payloads(conn) == [doc.id]
    assert store.altered_payloads(conn, states=None) == [doc.id]
    assert store.payload_intact(conn, other.id, other.payload)


def test_a_payload_that_no_longer_unpacks_is_altered(tmp_path: Path) -> None:
    conn = open_store(tmp_path)
    doc = issue(conn, "r-1", payload=b'{"total":"12.40"}')
    conn.execute("DROP TRIGGER documents_payload_frozen")
    conn.execute("UPDATE documents SET payload = ? WHERE id = ?", (b"\xff\xff\xff\xff", doc.id))
    assert store.altered_payloads(conn) == [doc.id]


def test_a_reservation_has_nothing_to_check(tmp_path: Path) -> None:
    conn = open_store(tmp_path)
    reserved = issue(conn, "r-1", payload=None)
    assert store.payload_intact(conn, reserved.id, None)


def test_a_card_payload_is_stored_against_its_signature_row(tmp_path: Path) -> None:
    """The provider's signature and the signed input are in the payload and in the signature
    row: the payload is packed against the row, reads back whole, and a signature row that
    changed under SQLite makes the payload read as altered, never as another receipt."""
    conn = open_store(tmp_path)
    reserved = issue(conn, "sign:s-1", payload=None, reserved_until=T0 + timedelta(minutes=15))
    signed_input = "5F3A9C0E2B7D4411A6C8E0F2B4D6A8C0E2F4A6B8;;20260115100000;1000;240;1240;1240;T-1"
    signature = base64.b64encode(hashlib.sha512(b"signed").digest()[:72]).decode()
    payload = json.dumps(
        {"issuer": "EL094019245", "input": signed_input, "signature": signature, "total": "12.40"}
    ).encode()
    with store.transaction(conn):
        row = store.add_signature(
            conn,
            document_id=reserved.id,
            request_id="s-1",
            terminal_id="T-1",
            amount=Decimal("12.40"),
            tip=Decimal("0"),
            input=signed_input,
            signature=signature,
            duration_type="H_24",
            expires_at=T0 + timedelta(hours=24),
            now=T0,
        )
        doc = store.freeze_payload(conn, reserved.id, payload, now=T0, signature_id=row.id)
    assert (doc.payload, doc.pack_signature) == (payload, row.id)
    assert store.get_document(conn, doc.id).payload == payload  # type: ignore[union-attr]
    stored = conn.execute("SELECT payload FROM documents WHERE id = ?", (doc.id,)).fetchone()[0]
    assert len(stored) < len(pack(payload)) - 100  # the 96 + 80 bytes are not stored again
    assert store.altered_payloads(conn) == []
    with pytest.raises(sqlite3.IntegrityError, match="packed against the signature"):
        conn.execute("UPDATE documents SET pack_signature = NULL WHERE id = ?", (doc.id,))

    conn.execute("UPDATE payment_signatures SET signature = ? WHERE id = ?", ("A" * 96, row.id))
    assert store.altered_payloads(conn) == [doc.id]
