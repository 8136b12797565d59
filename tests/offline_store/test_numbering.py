import sqlite3
import threading

import pytest

from offline_store import (
    allocate_number,
    insert_document,
    last_numbers,
    numbering_gaps,
    open_database,
    transaction,
    void_reservation,
)
from tests.offline_store.factory import T0, builder, issue, open_store


def test_numbers_are_per_series_and_consecutive(tmp_path):
    conn = open_store(tmp_path)
    numbers = [issue(conn, f"a{i}").number for i in range(3)]
    numbers += [issue(conn, "b0", series="B").number]
    assert numbers == [1, 2, 3, 1]
    assert last_numbers(conn) == {"A": 3, "B": 1}
    assert numbering_gaps(conn) == {}


def test_failed_build_or_rollback_consumes_no_number(tmp_path):
    conn = open_store(tmp_path)
    issue(conn, "r1")

    def broken(number: int):
        raise RuntimeError(f"payload builder failed for {number}")

    # The caller swallows the error and still commits.
    with transaction(conn), pytest.raises(RuntimeError):
        insert_document(conn, "A", broken, now=T0)
    with pytest.raises(RuntimeError), transaction(conn):
        insert_document(conn, "A", builder("r2"), now=T0)
        raise RuntimeError("crash before commit")
    assert issue(conn, "r3").number == 2
    assert numbering_gaps(conn) == {}


def test_database_refuses_a_number_that_is_not_next(tmp_path):
    conn = open_store(tmp_path)
    issue(conn, "r1")
    with pytest.raises(sqlite3.IntegrityError, match="not the next number"), transaction(conn):
        conn.execute(
            "INSERT INTO documents (request_id, request_hash, kind, type_code, series, number, "
            "issued_at, uid, internal_id, request_json, payload, total_amount, state, "
            "created_at, updated_at) VALUES ('x', 'h', 'receipt', '11.1', 'A', 3, ?, 'u', 'i', "
            "'{}', x'00', '1.00', 'pending', ?, ?)",
            (T0.isoformat(), T0.isoformat(), T0.isoformat()),
        )


def test_voided_number_is_not_a_gap_but_a_missing_row_is(tmp_path):
    conn = open_store(tmp_path)
    reserved = issue(conn, "r1", payload=None)
    issue(conn, "r2")
    with transaction(conn):
        void_reservation(conn, reserved.id, reason="declined", now=T0)
        assert allocate_number(conn, "A") == 3
    assert numbering_gaps(conn) == {}
    with transaction(conn):  # simulate a counter moved without a row (what must never happen)
        conn.execute("UPDATE series_counters SET last_number = 5 WHERE series = 'A'")
    assert numbering_gaps(conn) == {"A": [3, 4, 5]}


def test_concurrent_writers_on_two_connections_stay_gap_free(tmp_path):
    path = tmp_path / "store.db"
    open_database(path, now=T0).close()
    per_writer = 60
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(name: str) -> None:
        conn = open_database(path, now=T0)
        try:
            start.wait()
            for index in range(per_writer):
                issue(conn, f"{name}-{index}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    conn = open_database(path, read_only=True)
    numbers = [row[0] for row in conn.execute("SELECT number FROM documents ORDER BY number")]
    assert numbers == list(range(1, 2 * per_writer + 1))
    assert numbering_gaps(conn) == {}
