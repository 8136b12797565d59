"""Errors the store raises, so callers can tell a damaged file from a caller's mistake."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for every error raised on purpose by `offline_store`."""


class DatabaseDamaged(StoreError):
    """The SQLite file failed its integrity check or is not a database at all."""


class TransactionError(StoreError):
    """A write was attempted outside `transaction()`, or a transaction was nested."""


class InvalidTransition(StoreError):
    """A state change was asked from a state that does not allow it."""


class NotFound(StoreError):
    """The row a state change refers to does not exist."""
