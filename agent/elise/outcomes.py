"""What a provider call ended in: one frozen value per case, so callers `match` instead of
catching exceptions. The mapping from HTTP to these values lives in `responses.py`.

`raw` is the provider's JSON body with top-level keys lower-cased, kept for diagnosis; it is
neither shown in reprs nor part of equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal


@dataclass(frozen=True)
class Accepted:
    """201: the provider (and AADE) took the document."""

    mark: int
    uid: str | None
    authentication_code: str | None
    qr_url: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Duplicate:
    """409 (or a success:false "already transmitted" body): the provider already has it."""

    mark: int | None
    message: str
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class AadeDown:
    """408: the provider is up but AADE is not; resend later with IsDelayedCode 2."""

    message: str


@dataclass(frozen=True)
class Rejected:
    """400 and other 4xx: the data is wrong; retrying the same bytes will not help."""

    status: int
    messages: list[str]


@dataclass(frozen=True)
class Unauthorized:
    """401 that a fresh login did not cure: the key or its VAT binding is wrong."""

    message: str


@dataclass(frozen=True)
class Unreachable:
    """No usable answer: connect/TLS error, timeout, 5xx, or a success body we cannot read."""

    reason: str


@dataclass(frozen=True)
class Signed:
    """signpos 200: the string the provider signed and the base64 DER ECDSA signature."""

    input: str
    signature: str
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class PaymentUpdated:
    """updatePayment 200: the MARK of the payment record (carried in `message`)."""

    payment_mark: str
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class SignatureValidation:
    valid: bool
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class IrisInitiated:
    """InitiatePayment 200: the QR the customer scans (valid until `valid_until`), the IRIS ids,
    the merchant, and the provider's signature over the document's input string."""

    qr: str
    end_to_end_id: str
    authorisation_request_id: str
    merchant_id: str
    signed_input: str
    signature: str
    valid_until: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)


IrisState = Literal["Pending", "Completed", "Expired", "Failed"]


@dataclass(frozen=True)
class IrisStatus:
    """GetPaymentStatus 200: where the customer's payment is."""

    state: IrisState
    raw: dict[str, Any] = field(repr=False, compare=False)


Failure = AadeDown | Rejected | Unauthorized | Unreachable
SendOutcome = Accepted | Duplicate | Failure
SignOutcome = Signed | Failure
UpdateOutcome = PaymentUpdated | Duplicate | Failure
ValidateOutcome = SignatureValidation | Unreachable | Rejected | Unauthorized


@dataclass(frozen=True)
class ListedDocument:
    """One document of the provider's list, as far as it could be read (None: not given)."""

    uid: str | None
    mark: int | None
    internal_id: str | None
    type_code: str | None
    total: Decimal | None


@dataclass(frozen=True)
class DocumentPage:
    """One page of `getdocuments`; `next_page` None on the last one."""

    documents: list[ListedDocument]
    next_page: int | None


ListOutcome = DocumentPage | Rejected | Unauthorized | Unreachable | AadeDown


@dataclass(frozen=True)
class ListedOrder:
    """One open order slip (8.6) of the provider's list, as far as it could be read."""

    mark: int | None
    uid: str | None
    internal_id: str | None
    table: str | None
    issued_at: datetime | None
    total: Decimal | None


@dataclass(frozen=True)
class OrderPage:
    """One page of the provider's open order slips; `next_page` None on the last one."""

    orders: list[ListedOrder]
    next_page: int | None


OrderListOutcome = OrderPage | Rejected | Unauthorized | Unreachable | AadeDown
IrisInitiateOutcome = IrisInitiated | Failure
IrisStatusOutcome = IrisStatus | Failure
