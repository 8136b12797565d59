"""How Python values are written to SQLite columns and read back.

Times are ISO-8601 text with the caller's UTC offset (an Athens receipt keeps its `+02:00` or
`+03:00`); SQL compares them through `julianday()` so rows written on both sides of a DST change
still order correctly. Money is exact decimal text, never REAL.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal


def time_to_db(value: datetime) -> str:
    """ISO-8601 with offset; a naive time is refused because it is ambiguous on a register."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
    return value.isoformat()


def optional_time_to_db(value: datetime | None) -> str | None:
    """`time_to_db` for nullable columns."""
    return None if value is None else time_to_db(value)


def time_from_db(text: str) -> datetime:
    """Parse stored ISO-8601 text back to an aware datetime (with a fixed offset)."""
    return datetime.fromisoformat(text)


def optional_time_from_db(text: str | None) -> datetime | None:
    """`time_from_db` for nullable columns."""
    return None if text is None else time_from_db(text)


def money_to_db(value: Decimal) -> str:
    """Plain decimal text (`12.40`, never `1.24E+1`); floats are refused to keep amounts exact."""
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{value} is not an amount")
    return format(value, "f")


def money_from_db(text: str) -> Decimal:
    """Stored decimal text back to `Decimal`, keeping its scale."""
    return Decimal(text)


def digest_to_db(value: str) -> tuple[str, bytes | None]:
    """A SHA-256 in hex as the (text, 32 bytes) pair of columns that store it: the bytes, and ''
    in the text column; anything else stays text (half the size: 32 bytes, not 64 characters)."""
    if len(value) == 64 and value == value.lower():
        try:
            return "", bytes.fromhex(value)
        except ValueError:
            pass
    return value, None


def digest_from_db(text: str, digest: bytes | None) -> str:
    """The hex text `digest_to_db` was given, from its two columns."""
    return text if digest is None else bytes(digest).hex()
