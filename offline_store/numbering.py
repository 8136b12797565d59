"""Gap-free document numbers per series.

The number is taken inside the caller's `BEGIN IMMEDIATE` transaction, which holds the only
write lock, and the counter itself is advanced by a trigger on the `documents` insert. So the
counter can only move together with a committed row: a crash or rollback leaves no gap, and an
insert carrying any other number is refused by the database.
"""

from __future__ import annotations

import json
import sqlite3

from offline_store.database import require_transaction


def allocate_number(conn: sqlite3.Connection, series: str) -> int:
    """The number the next document of `series` must carry (1 for a new series)."""
    require_transaction(conn)
    row = conn.execute(
        "SELECT last_number FROM series_counters WHERE series = ?", (series,)
    ).fetchone()
    return 1 if row is None else int(row["last_number"]) + 1


def archived_count(conn: sqlite3.Connection) -> int:
    """Documents moved to the archive files, over all series (kept by the delete trigger)."""
    count: int = conn.execute("SELECT coalesce(sum(archived), 0) FROM series_counters").fetchone()[
        0
    ]
    return count


def last_numbers(conn: sqlite3.Connection) -> dict[str, int]:
    """Last issued number of every series."""
    rows = conn.execute("SELECT series, last_number FROM series_counters ORDER BY series")
    return {row["series"]: row["last_number"] for row in rows}


def numbering_gaps(conn: sqlite3.Connection) -> dict[str, list[int]]:
    """Numbers in 1..last_number with no document row, per series (only series with gaps).

    A voided reservation is recorded, so it is not a gap, and neither is a number that moved to
    the archive (`archived_numbers`). Series whose live plus archived rows (counted by the
    triggers, never by a scan) equal their counter cannot have a gap (numbers are unique and
    never above the counter), so the walk over every number runs only for a series that fails
    that cheap check.
    """
    suspect = [
        row["series"]
        for row in conn.execute(
            "SELECT series FROM series_counters WHERE present + archived != last_number"
        )
    ]
    if not suspect:
        return {}
    rows = conn.execute(
        """
        WITH RECURSIVE wanted (series, number, last_number) AS (
            SELECT series, 1, last_number FROM series_counters
            WHERE last_number >= 1 AND series IN (SELECT value FROM json_each(?))
            UNION ALL
            SELECT series, number + 1, last_number FROM wanted WHERE number < last_number
        )
        SELECT wanted.series, wanted.number FROM wanted
        LEFT JOIN documents ON documents.series = wanted.series
            AND documents.number = wanted.number
        WHERE documents.id IS NULL AND NOT EXISTS (
            SELECT 1 FROM archived_numbers a WHERE a.series = wanted.series
                AND wanted.number BETWEEN a.first_number AND a.last_number)
        ORDER BY wanted.series, wanted.number
        """,
        (json.dumps(suspect),),
    )
    gaps: dict[str, list[int]] = {}
    for row in rows:
        gaps.setdefault(row["series"], []).append(row["number"])
    return gaps
