"""What every table's state changes share: the checked one-row write and the from-state rule."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection
from enum import StrEnum
from typing import Any, TypeVar

from offline_store.database import require_transaction
from offline_store.errors import InvalidTransition, NotFound

Record = TypeVar("Record")


def write_one(
    conn: sqlite3.Connection,
    sql: str,
    params: tuple[Any, ...],
    from_row: Callable[[sqlite3.Row], Record],
) -> Record:
    """Run an `INSERT`/`UPDATE … RETURNING *` in the caller's transaction and give back the row
    it wrote: one statement instead of a write and a re-read."""
    require_transaction(conn)
    rows = conn.execute(sql, params).fetchall()
    if len(rows) != 1:
        raise NotFound(f"the statement wrote {len(rows)} rows, expected one")
    return from_row(rows[0])


def check_transition(
    action: str, subject: str, state: StrEnum, allowed: Collection[StrEnum]
) -> None:
    """Refuse a change from a state that does not allow it, naming both in the error."""
    if state not in allowed:
        wanted = ", ".join(sorted(allowed))
        raise InvalidTransition(f"{action}: {subject} is {state}, expected one of: {wanted}")
