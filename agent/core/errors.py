"""The use cases' refusals, one class each, so callers match on what happened, not on a code.

The local API maps every class here and in `agent.fiscal.errors` to an HTTP status and an error
code in one table (`agent.api.errors.ERROR_CODES`); a test checks that none is missing.
"""

from __future__ import annotations

from agent.fiscal.errors import DomainError


class RequestIdReused(DomainError):
    """The request_id was already used with a different body (or for another receipt)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"request_id {request_id!r} was already used with a different body; "
            "use a new request_id for a new document"
        )


class ReceiptNotFound(DomainError):
    """No such receipt (or none issued yet with that id)."""


class UnknownSignature(DomainError):
    """The signature_id names no signature, or one made for another receipt."""


class SignatureNotActive(DomainError):
    """The signature was already used or superseded by a newer one."""


class SignatureExpired(DomainError):
    """The provider signature's lifetime (2 h or 24 h) has passed: sign again."""


class SignedAmountDiffers(DomainError):
    """The payment's amount or terminal differ from what was signed."""


class SignaturesMixed(DomainError):
    """Card signatures of one receipt come from different reservations."""


class SignRequestSettled(DomainError):
    """A sign request_id whose reservation was issued or voided since."""


class ReservationUsed(DomainError):
    """The signed reservation was already issued as a receipt."""


class ReservationVoided(DomainError):
    """The signed reservation was voided before it was issued (the day ended, or a technician
    accepted a database rollback): its number is never used, the sale is signed again."""


class SignedTypeDiffers(DomainError):
    """The signature was made for another document type."""


class SignedTotalDiffers(DomainError):
    """The receipt's total differs from the total the provider signed."""


class ConnectedReceiptUnknown(DomainError):
    """A connected MARK names no POS receipt of this register, so its payment is unknown."""


class AmountExceedsTotal(DomainError):
    """The card amount is above the receipt total."""


class NotSameDay(DomainError):
    """A card payment on a MARKed receipt must happen the day it was issued."""


class ReceiptNotSignable(DomainError):
    """Only a reserved receipt or one with a MARK can be signed for."""


class ReceiptHasNoMark(DomainError):
    """A payment on a receipt needs its MARK, and it has none yet."""


class ProviderRejected(DomainError):
    """The provider refused the data; a refused document is kept as `rejected` for a person."""


class ProviderSignatureUnusable(DomainError):
    """The provider's signed input cannot be parsed: the card must not be charged."""


class ProviderSignatureMismatch(DomainError):
    """The provider signed other data than ours: the card must not be charged."""


class PaymentAlreadyRecorded(DomainError):
    """The provider already holds a payment for this receipt (retrying would repeat the 409)."""


class PaymentNotSent(DomainError):
    """The provider could not be reached for a card payment; the same request_id may retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the payment could not be sent to the provider now ({reason}); "
            "retry with the same request_id",
            detail={"retryable": True},
        )


class PosReceiptNotUpdatable(DomainError):
    """A later card payment named an 8.4/8.5, which the provider refuses (updatePayment)."""


class SignRetryLater(DomainError):
    """signpos answered 408: the provider is still processing this document; not an outage."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the provider is still processing this document ({reason[:200]}); sign again "
            "with the same request_id in a few seconds (the receipt's number is kept)",
            detail={"retryable": True},
        )


class StorageUnavailable(DomainError):
    """The register's storage refused the write (full, read-only, locked, I/O errors): nothing
    was issued, and the same request_id may be retried once the storage is back."""

    def __init__(
        self, fault: str, reason: str, message: str | None = None, **detail: object
    ) -> None:
        super().__init__(
            message
            or f"the register's storage cannot be written ({fault}: {reason}); nothing was "
            "issued, retry with the same request_id; see pos-agent status",
            detail={"retryable": True, "storage": fault, **detail},
        )
        self.fault = fault
        self.reason = reason


class DatabaseRolledBack(DomainError):
    """The database is behind its high-water mark: issuing in this series would reuse numbers
    the provider already holds. Not retryable until a technician acts."""


class ReceiptUnreadable(DomainError):
    """The stored document no longer unpacks (bytes changed on disk)."""


class PayloadAltered(DomainError):
    """A frozen payload no longer hashes to its journal record: it is never sent."""

    WHAT = (
        "its frozen payload no longer matches the SHA-256 journaled when it was frozen (altered "
        "on disk: a failing SD card or a hand edit); keep a copy of the database, check dmesg, "
        "and contact support"
    )


class NothingRolledBack(DomainError):
    """`rollback accept` while the database is not behind its mark."""


class StorageBusy(StorageUnavailable):
    """Another connection held the database's write lock longer than the daemon waits for it
    (`DAEMON_BUSY_TIMEOUT_MS`): nothing was issued; the same request_id may be retried at once
    (the API runs it again itself for a moment first: `routing.BUSY_RETRY_BUDGET_S`)."""


class OutcomeNotRecorded(StorageUnavailable):
    """The receipt was frozen and sent, but the provider's answer could not be written. It stays
    `pending`: the sync sends it again once the storage is back (the provider answers with the
    same MARK) and prints it then. Issuing it again would make a second receipt."""

    def __init__(self, fault: str, reason: str, *, receipt_id: int, name: str) -> None:
        super().__init__(
            fault,
            reason,
            f"receipt {name} (receipt_id {receipt_id}) is frozen and was sent to the provider, "
            f"but its answer could not be written ({fault}: {reason}); it stays pending and is "
            "sent again and printed once the storage is back. Do not issue it again: retry the "
            f"same request_id or GET /v1/receipts/{receipt_id} for its state",
            receipt_id=receipt_id,
        )


# -- food service: tables, order slips (8.6), the cash drawer --------------------------------


class TableNotOpen(DomainError):
    """The table has no open order: nothing to close."""


class OrderNotOpen(DomainError):
    """The order slip does not exist, is not an order of a table, or is already closed or
    cancelled."""


class ProviderOrderNotFound(DomainError):
    """The MARK is not an order slip the provider holds open that this register lacks (as the
    last reconciliation found), or the provider's list gave it no table."""


class OrdersNotSynced(DomainError):
    """Some of the table's order slips are delayed and have no MARK yet: no receipt may connect a
    MARK that does not exist. Retry with the same request_id once they are synced."""

    def __init__(self, message: str, *, order_ids: list[int]) -> None:
        super().__init__(message, detail={"retryable": True, "order_ids": order_ids})


class CancelLeavesReturns(DomainError):
    """Cancelling this order would leave returns of items the table no longer has."""


class DrawerNotConfigured(DomainError):
    """`printer.cash_drawer` is "none" (or the printer is disabled): there is no drawer to open."""


# -- the day: X and Z reports, reconciliation with the provider ------------------------------


class ClosingNotFound(DomainError):
    """No daily closing (Z) with that number was made on this register."""


class PrinterDisabled(DomainError):
    """Printing is off on this register: there is no printer to print on."""


class IrisUnavailable(DomainError):
    """IRIS needs the provider, which cannot be reached now: the till offers another method.
    Nothing is reserved (or the reservation was released)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"IRIS payments need the provider, which cannot be reached now ({reason[:300]}); "
            "offer another payment method",
            detail={"retryable": True},
        )


class IrisPaymentNotFound(DomainError):
    """No IRIS payment with that id."""


class IrisPaymentNotCompleted(DomainError):
    """The receipt names an IRIS payment that is not completed (or already used)."""
