"""`/IrisPayments/...`: IRIS instant payments through the provider, with switchable outcomes.

InitiatePayment takes the document's identity and amounts as signpos does, signs the same
input string with the provider's IRIS merchant id where a card's terminal id goes
(`UID;;yyyyMMddHHmmss;net;vat;total;paid;MERCHANT`) and answers the QR text the customer scans,
`endToEndDiasId`, `authorisationRequestId`, `merchantId`, `signedDataInput`, `signature` and
`validUntil`. GetPaymentStatus answers `Pending` until the outcome chosen through
`/_sandbox/iris` happens: `complete` or `fail` on the N-th status call, `expire` on the N-th
call or once the QR's validity has passed on the sandbox clock. Kept in memory: a restarted
sandbox forgets its IRIS payments, as a provider forgets an expired QR.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from agent.sandbox.pos import SignPos

MERCHANT_ID = "IRIS-SANDBOX-0001"
Outcome = Literal["complete", "expire", "fail"]
OUTCOMES: tuple[Outcome, ...] = ("complete", "expire", "fail")


@dataclass(frozen=True)
class IrisSettings:
    outcome: Outcome = "complete"
    after_polls: int = 1
    validity_s: int = 120

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        if self.after_polls < 1:
            raise ValueError("after_polls must be >= 1")
        if not 60 <= self.validity_s <= 180:
            raise ValueError("validity_s must be 60..180 (the provider's QR lives 1-3 minutes)")

    @classmethod
    def of(cls, body: Any) -> IrisSettings:
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        return replace(
            cls(),
            **{key: body[key] for key in ("outcome", "after_polls", "validity_s") if key in body},
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class IrisPayment:
    end_to_end_id: str
    authorisation_request_id: str
    signed_input: str
    valid_until: datetime
    settings: IrisSettings
    polls: int = 0
    state: str = "Pending"


class IrisBook:
    """The IRIS payments this sandbox started, by endToEndDiasId."""

    def __init__(self) -> None:
        self.settings = IrisSettings()
        self._payments: dict[str, IrisPayment] = {}

    def initiate(self, sign: SignPos, now: datetime) -> IrisPayment:
        payment = IrisPayment(
            end_to_end_id=f"E2E{secrets.token_hex(12).upper()}",
            authorisation_request_id=f"AR{secrets.token_hex(8).upper()}",
            signed_input=sign.input_string(),
            valid_until=now + timedelta(seconds=self.settings.validity_s),
            settings=self.settings,
        )
        self._payments[payment.end_to_end_id] = payment
        return payment

    def poll(self, end_to_end_id: str, now: datetime) -> IrisPayment | None:
        """One status call: counts it, and settles the payment when its outcome is due."""
        payment = self._payments.get(end_to_end_id)
        if payment is None or payment.state != "Pending":
            return payment
        payment.polls += 1
        settings = payment.settings
        if payment.polls >= settings.after_polls:
            payment.state = {"complete": "Completed", "expire": "Expired", "fail": "Failed"}[
                settings.outcome
            ]
        elif now > payment.valid_until:
            payment.state = "Expired"
        return payment


def qr_text(payment: IrisPayment, amount: str) -> str:
    """What the customer's banking app scans (the sandbox's own shape: the ids and amount)."""
    return f"IRIS:{MERCHANT_ID}:{payment.authorisation_request_id}:{payment.end_to_end_id}:{amount}"
