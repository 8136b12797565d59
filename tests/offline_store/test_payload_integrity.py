"""A frozen payload is compared with the SHA-256 journaled when it was frozen."""

from __future__ import annotations

from pathlib import Path

import offline_store as store
from offline_store.packing import pack
from tests.offline_store.factory import issue, open_store


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
