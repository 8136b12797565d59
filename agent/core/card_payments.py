"""Card payments under Α.1155/2023: sign before charging, then issue the document (a later
payment on a MARKed receipt is `agent/core/receipt_payments.py`).

Refunds to a card are signed the same way: an 11.4 credit note or an 8.5 POS return reserves its
number and gets the provider's signature before the terminal pays the money back.

`sign` reserves the receipt's final identity (series, number, issue time → UID) so the signed
string matches the document that follows. A declined card signs again for the same reservation
(`receipt_id`). When the provider cannot be reached the POS gets an "autonomous" answer with
reason InterconnectionLoss, and the reservation is released at once so the next receipt of the
series takes its number (no silent gap).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

import offline_store as store
from agent.clock import ATHENS
from agent.config import AgentConfig
from agent.core.answers import SignatureAnswer, SignedFields
from agent.core.errors import (
    AmountExceedsTotal,
    NotSameDay,
    PosReceiptNotUpdatable,
    ProviderRejected,
    ProviderSignatureMismatch,
    ProviderSignatureUnusable,
    ReceiptNotFound,
    ReceiptNotSignable,
    SignedTypeDiffers,
    SignRequestSettled,
    SignRetryLater,
)
from agent.core.issuing import Draft, release_reservation, reserve_number
from agent.core.provider_health import note_outcome
from agent.core.request_identity import (
    Answer,
    CanonicalRequest,
    canonical,
    remember_created,
    remembered_answer,
)
from agent.core.runtime import Runtime
from agent.core.tables import part_totals
from agent.elise.outcomes import (
    AadeDown,
    Rejected,
    Signed,
    Unauthorized,
    Unreachable,
)
from agent.elise.requests import PaymentReference, SignPosRequest
from agent.fiscal.amounts import HUNDRED, DocumentTotals
from agent.fiscal.document_builder import price_lines
from agent.fiscal.errors import FieldProblem
from agent.fiscal.provider_payloads import payload_totals
from agent.fiscal.receipt_model import (
    POS_PAYMENT_TYPES,
    PaymentSignRequest,
)
from agent.fiscal.uid import bare_vat
from agent.json_codec import loads

Duration = Literal["H_24", "H_2"]
# The endpoint its remembered answers are stored under.
SIGN = "payments/sign"
SIGNATURE_LIFETIME: dict[Duration, timedelta] = {
    "H_24": timedelta(hours=24),
    "H_2": timedelta(hours=2),
}
Target = tuple[store.StoredDocument, DocumentTotals]


@dataclass(frozen=True)
class Autonomous:
    """The provider cannot sign now: the terminal charges in autonomous mode (reason
    InterconnectionLoss) and the receipt is issued with its transaction id and no signature.
    Not remembered: the same request_id may be retried once the provider is back."""

    reason: str


def cents(value: Decimal) -> int:
    return int(value * HUNDRED)


def parse_signed_input(text: str) -> SignedFields:
    """Split a signed input `UID;MARK;yyyyMMddHHmmss;a1;a2;a3;a4;TID` (docs/provider.md §7.2).

    The four amounts come in an order that differs per NSP (Cardlink/Mellon: net;vat;total;paid;
    others put paid first), so they are returned as given and compared as a multiset."""
    parts = text.split(";")
    if len(parts) != 8:
        raise ValueError(f"signed input has {len(parts)} fields, expected 8")
    return SignedFields(
        uid=parts[0],
        mark=parts[1] or None,
        timestamp=parts[2],
        amounts_cents=[int(p) for p in parts[3:7]],
        terminal_id=parts[7],
    )


@dataclass(frozen=True)
class SignedInputWording:
    """How a refused signed input is explained: a card's and an IRIS payment's differ in the
    name of the terminal field and in what the POS must not do."""

    input: str
    data: str
    terminal_field: str
    refusal: str


CARD_CHECK = SignedInputWording(
    "signed input", "different data", "terminal id", "the card must not be charged"
)


def check_signed_input(
    text: str,
    doc: store.StoredDocument,
    amounts: DocumentTotals,
    paid: Decimal,
    terminal_id: str,
    wording: SignedInputWording,
) -> SignedFields:
    """The provider signed what we will issue: our UID, our amounts, our terminal."""
    try:
        parsed = parse_signed_input(text)
    except ValueError as exc:
        raise ProviderSignatureUnusable(
            f"the provider's {wording.input} is malformed: {exc}"
        ) from exc
    expected = sorted([cents(amounts.net), cents(amounts.vat), cents(amounts.gross), cents(paid)])
    problems = []
    if parsed.uid.upper() != doc.uid:
        problems.append("UID")
    if sorted(parsed.amounts_cents) != expected:
        problems.append("amounts")
    if parsed.terminal_id != terminal_id:
        problems.append(wording.terminal_field)
    if problems:
        raise ProviderSignatureMismatch(
            f"the provider signed {wording.data} (" + ", ".join(problems) + f"); {wording.refusal}",
        )
    return parsed


@dataclass(frozen=True)
class SignedFor:
    """A signature the provider gave for a sign request, checked against the reservation."""

    request: PaymentSignRequest
    digest: str
    doc: store.StoredDocument
    outcome: Signed
    parsed: SignedFields
    duration: Duration


def record_signature(
    conn: sqlite3.Connection, config: AgentConfig, signed: SignedFor, *, now: datetime
) -> Answer[SignatureAnswer]:
    """In the caller's transaction: the receipt's older signatures superseded, this one stored
    `active`, and the answer a replay of the sign request gets."""
    request, doc, outcome = signed.request, signed.doc, signed.outcome
    expires_at = now + SIGNATURE_LIFETIME[signed.duration]
    store.supersede_signatures(conn, doc.id, now=now)
    signature = store.add_signature(
        conn,
        document_id=doc.id,
        request_id=request.request_id,
        terminal_id=request.terminal_id,
        amount=request.amount,
        tip=request.tip,
        input=outcome.input,
        signature=outcome.signature,
        duration_type=signed.duration,
        expires_at=expires_at,
        now=now,
    )
    answer = SignatureAnswer(
        signature_id=signature.id,
        receipt_id=doc.id,
        type=doc.type_code,
        series=doc.series,
        number=doc.number,
        issued_at=doc.issued_at.isoformat(),
        uid=doc.uid,
        mark=doc.mark,
        input=outcome.input,
        signature=outcome.signature,
        fields=signed.parsed,
        provider_id=config.provider.provider_id,
        nsp_code=config.terminal.nsp_code,
        signature_duration=signed.duration,
        expires_at=expires_at.isoformat(),
        mode="standard",
    )
    return remember_created(
        conn,
        request_id=request.request_id,
        endpoint=SIGN,
        digest=signed.digest,
        answer=answer,
        document_id=doc.id,
        now=now,
        signature_id=signature.id,
    )


def payment_reference(
    config: AgentConfig, doc: store.StoredDocument, amounts: DocumentTotals, amount: Decimal
) -> PaymentReference:
    """What the provider signs for a payment of `amount` on `doc`: card and IRIS alike."""
    return PaymentReference(
        issuer_tin=bare_vat(config.issuer.vat),
        issue_date=doc.issued_at,
        branch_code=config.issuer.branch,
        invoice_type_code=doc.type_code,
        series=doc.series,
        identifier=str(doc.number),
        payment_amount=amount,
        total_net_amount=amounts.net,
        total_vat_amount=amounts.vat,
        total_amount=amounts.gross,
    )


class CardPaymentService:
    """The provider's signature a card terminal needs before it charges (`POST
    /v1/payments/sign`), or what to do without one (`Autonomous`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    async def sign(self, request: PaymentSignRequest) -> Answer[SignatureAnswer] | Autonomous:
        rt = self.rt
        stored = canonical(request)
        replay = remembered_answer(
            rt.conn, request.request_id, stored.digest, endpoint=SIGN, model=SignatureAnswer
        )
        if replay is not None:
            return replay
        now = rt.clock()
        doc, amounts = self._target(request, stored, now)
        if rt.breaker.provider_unreachable:
            # Known unreachable: autonomous at once. While only AADE is down (408, code 2) the
            # provider still signs: signpos does not involve AADE (docs/provider.md §6).
            return self._autonomous(doc, rt.breaker.last_failure or "provider unavailable", now)
        duration: Duration = "H_2" if rt.config.terminal.food_service else "H_24"
        sent_in = rt.breaker.generation
        outcome = await rt.client.sign_pos(self._sign_pos_request(request, doc, amounts, duration))
        now = rt.clock()
        note_outcome(rt, outcome, sent_in, reaches_aade=False)
        match outcome:
            case Signed():
                parsed = check_signed_input(
                    outcome.input, doc, amounts, request.amount, request.terminal_id, CARD_CHECK
                )
                return self._store_signature(
                    request, stored.digest, doc, outcome, parsed, duration, now
                )
            case Rejected():
                self._release(doc, now)
                raise ProviderRejected(
                    "the provider refused to sign: " + "; ".join(outcome.messages),
                )
            case Unauthorized():
                return self._autonomous(doc, "provider refused the credentials", now)
            case AadeDown(message=reason):
                # signpos involves no AADE: 408 is the provider still processing this document
                # (docs/provider.md §6). The reservation stays; the same request_id signs again.
                raise SignRetryLater(reason or "the provider answered 408")
            case Unreachable(reason=reason):
                return self._autonomous(doc, reason or "provider unavailable", now)

    def _sign_pos_request(
        self,
        request: PaymentSignRequest,
        doc: store.StoredDocument,
        amounts: DocumentTotals,
        duration: Duration,
    ) -> SignPosRequest:
        config = self.rt.config
        return SignPosRequest(
            payment=payment_reference(config, doc, amounts, request.amount),
            mark=doc.mark,
            terminal_id=request.terminal_id,
            signature_duration=duration,
            nsp_code=config.terminal.nsp_code,
        )

    def _target(
        self, request: PaymentSignRequest, stored: CanonicalRequest, now: datetime
    ) -> Target:
        """The document the card pays: the receipt named by `receipt_id`, this request's own
        reservation (a retry after an autonomous answer), or a new reservation."""
        if request.receipt_id is not None:
            return self._named_receipt(request, request.receipt_id, now)
        sign_key = f"sign:{request.request_id}"
        existing = store.get_by_request_id(self.rt.conn, sign_key)
        if existing is not None and existing.state == store.DocumentState.RESERVED:
            return self._extend(existing, request, now)
        if existing is not None:
            # Its answer is not remembered (a database restored or a WAL lost), but its
            # reservation was issued or voided since: that sale cannot be signed again.
            raise SignRequestSettled(
                f"sign request {request.request_id} was used before: its reservation "
                f"{existing.series}/{existing.number} is {existing.state.value} now; sign the "
                "sale again with a new request_id"
            )
        type_code, totals = _request_amounts(request, self.rt)
        amounts = _checked(request, totals)
        draft = Draft(sign_key, stored, type_code, amounts.gross)
        reserved = self._reserve(draft, now)
        self.rt.rollback_guard.advance()
        return reserved, amounts

    def _named_receipt(self, request: PaymentSignRequest, receipt_id: int, now: datetime) -> Target:
        """A declined card signs again for its reservation; a MARKed receipt is paid later."""
        doc = store.get_document(self.rt.conn, receipt_id)
        if doc is None:
            raise ReceiptNotFound(
                f"no receipt {receipt_id}", [FieldProblem("receipt_id", "unknown")]
            )
        if doc.state == store.DocumentState.RESERVED:
            return self._extend(doc, request, now)
        if doc.state == store.DocumentState.ACCEPTED and doc.mark is not None:
            refuse_pos_receipt(doc)
            if doc.issued_at.astimezone(ATHENS).date() != now.astimezone(ATHENS).date():
                raise NotSameDay("a card payment on a MARKed receipt must happen the same day")
            assert doc.payload is not None
            return doc, _checked(request, payload_totals(loads(doc.payload)))
        raise ReceiptNotSignable(
            f"receipt {doc.id} is {doc.state.value}; only a reserved receipt or one with a MARK can be signed for",
        )

    def _extend(
        self, doc: store.StoredDocument, request: PaymentSignRequest, now: datetime
    ) -> Target:
        """Sign again for a reservation: its amounts are the first sign request's."""
        original = PaymentSignRequest.model_validate_json(doc.request_json)
        amounts = _checked(request, _request_amounts(original, self.rt)[1])
        with store.transaction(self.rt.conn):
            doc = store.extend_reservation(
                self.rt.conn, doc.id, reserved_until=self._reserve_until(now), now=now
            )
        return doc, amounts

    def _reserve(self, draft: Draft, now: datetime) -> store.StoredDocument:
        return reserve_number(self.rt, draft, now, reserved_until=self._reserve_until(now))

    def _reserve_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.rt.config.terminal.reservation_timeout_s)

    def _store_signature(
        self,
        request: PaymentSignRequest,
        digest: str,
        doc: store.StoredDocument,
        outcome: Signed,
        parsed: SignedFields,
        duration: Duration,
        now: datetime,
    ) -> Answer[SignatureAnswer]:
        with store.transaction(self.rt.conn):
            return record_signature(
                self.rt.conn,
                self.rt.config,
                SignedFor(request, digest, doc, outcome, parsed, duration),
                now=now,
            )

    def _release(self, doc: store.StoredDocument, now: datetime) -> None:
        release_reservation(self.rt, doc, now)

    def _autonomous(self, doc: store.StoredDocument, reason: str, now: datetime) -> Autonomous:
        """The reservation is released at once: the next receipt of the series takes its number."""
        self._release(doc, now)
        return Autonomous(reason[:300])


def refuse_pos_receipt(doc: store.StoredDocument) -> None:
    """The provider refuses updatePayment on a POS receipt (QA TC 04: 400): its card lines are
    the payment. Refused here, before a card is charged for a payment that cannot be recorded."""
    if doc.type_code in POS_PAYMENT_TYPES:
        raise PosReceiptNotUpdatable(
            f"receipt {doc.id} is an {doc.type_code} POS receipt: its card lines are its payment "
            "and the provider refuses a later payment on it; issue a new 8.4 for a new payment",
            [FieldProblem("receipt_id", f"an {doc.type_code} takes no later payment")],
        )


def _checked(request: PaymentSignRequest, amounts: DocumentTotals) -> DocumentTotals:
    """Refuse a card amount above the receipt total before anything is reserved or extended:
    a 4xx must leave the store as it was (no number taken, no journal entry)."""
    if request.amount > amounts.gross:
        raise AmountExceedsTotal(
            f"the card amount {request.amount} exceeds the receipt total {amounts.gross}",
            [FieldProblem("amount", "greater than the receipt total")],
        )
    return amounts


def _request_amounts(request: PaymentSignRequest, rt: Runtime) -> tuple[str, DocumentTotals]:
    """The document type and the totals the provider signs: a POS receipt's amount, a table's
    receipt as the table will carry it (`agent.core.tables`), or the priced lines."""
    if request.table is not None:
        type_code, totals = part_totals(rt, request.table)
        if type_code != request.document_type:
            raise SignedTypeDiffers(
                f"this part of table {request.table.table} is paid by an {type_code}",
                [FieldProblem("document_type", f"must be {type_code}")],
            )
        return type_code, totals
    if request.document_type in POS_PAYMENT_TYPES:
        amount = request.amount
        return request.document_type, DocumentTotals(net=amount, vat=Decimal("0.00"), gross=amount)
    prices_include_vat = rt.config.pricing.prices_include_vat
    return request.document_type, price_lines(
        request.lines, prices_include_vat=prices_include_vat, discount=request.discount
    ).totals
