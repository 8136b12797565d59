"""What `status`, `doctor` and `/metrics` say about the day's proof: receipts accepted without a
known MARK, and (with the daily closing) closings not done and reconciliations that failed.

Each finding names what is wrong and what to do; the levels are decided by the callers."""

from __future__ import annotations


def mark_unknown_finding(count: int, ids: list[int]) -> str:
    """Printed and registered, but the provider's answer gave no usable MARK: the paper lacks its
    proof of registration until the MARK is found."""
    listed = ", ".join(str(i) for i in ids)
    more = count - len(ids)
    return (
        f"{count} receipt(s) accepted without a known MARK ({listed}"
        f"{f' and {more} more' if more > 0 else ''}): the provider's duplicate answer carried "
        "none or an unusable one; look each receipt up by its UID in the provider's portal "
        "(pos-agent status --json lists them)"
    )
