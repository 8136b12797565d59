"""Row counts kept by triggers (`row_counts`), so `status` and `/metrics` never count history.

Every insert, state change and delete of `documents` and `print_jobs` moves the count of its
state in the same statement (schema 2), so the figures are exactly what `count(*)` would say,
at the cost of one indexed upsert per write instead of a scan per read.
"""

from __future__ import annotations

import sqlite3


def state_counts(conn: sqlite3.Connection, table: str) -> dict[str, int]:
    """`{state: rows}` of `table` ("documents" or "print_jobs"); states never seen are absent.

    A primary-key range (`name` between "table." and "table/") is one index seek."""
    rows = conn.execute(
        "SELECT name, n FROM row_counts WHERE name > ? AND name < ?", (f"{table}.", f"{table}/")
    )
    return {row[0].split(".", 1)[1]: row[1] for row in rows}
