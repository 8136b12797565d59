"""Returns held behind an original that can no longer give them a MARK.

A return naming its original by receipt id is issued at once and held offline until the
original's MARK is known (`agent.core.returns`). If the provider rejected the original, or
accepted it without telling its MARK, the sync alone never releases the return: it would stay
offline silently until its transmission deadline. `status`, `doctor` and `/metrics` name each
such return with its original and what to do.
"""

from __future__ import annotations

import sqlite3
from typing import Literal

from pydantic import BaseModel, ConfigDict

import offline_store as store
from agent.core.returns import waiting_for
from agent.fiscal.returns import RETURN_OF


class StrandedReturn(BaseModel):
    """A held return and its original; `why`: the original was rejected, or accepted without a
    known MARK."""

    model_config = ConfigDict(frozen=True)

    receipt_id: int
    type_code: str
    series: str
    number: int
    original_id: int
    original_series: str
    original_number: int
    why: Literal["rejected", "mark_unknown"]


def stranded_returns(conn: sqlite3.Connection) -> list[StrandedReturn]:
    """The unsent returns waiting for an original that is rejected or accepted without a MARK
    (reads only the unsent returns, each with its original)."""
    found = []
    for document_id in store.unsent_ids_of_types(conn, RETURN_OF):
        doc = store.get_document(conn, document_id)
        original = None if doc is None else waiting_for(conn, doc)
        if doc is None or original is None:
            continue
        if original.state == store.DocumentState.REJECTED:
            why: Literal["rejected", "mark_unknown"] = "rejected"
        elif original.state == store.DocumentState.ACCEPTED and original.mark_unknown:
            why = "mark_unknown"
        else:
            continue  # the original is still on its way: the sync sends the return after it
        found.append(
            StrandedReturn(
                receipt_id=doc.id,
                type_code=doc.type_code,
                series=doc.series,
                number=doc.number,
                original_id=original.id,
                original_series=original.series,
                original_number=original.number,
                why=why,
            )
        )
    return found


def stranded_finding(held: StrandedReturn) -> str:
    """One held return: which, behind which original, why, and what to do."""
    name = (
        f"return {held.receipt_id} ({held.type_code} {held.series}/{held.number}) is held "
        f"offline behind its original receipt {held.original_id} "
        f"({held.original_series}/{held.original_number})"
    )
    if held.why == "rejected":
        return (
            f"{name}, which the provider rejected: it can never carry the original's MARK and "
            "is never sent; settle the original first (see the rejected receipts), then with "
            "the accountant issue the return again naming the MARK by correlated_marks"
        )
    return (
        f"{name}, which was accepted without a known MARK: run `pos-agent reconcile --date DAY` "
        "for the original's day (or look its MARK up by UID in the provider's portal); once "
        "the MARK is known the return is sent on the next sync"
    )
