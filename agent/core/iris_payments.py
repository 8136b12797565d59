"""IRIS instant payments (method 8) through the provider.

Like a card under Α.1155/2023: the receipt's number and issue time are reserved first, so the
document the provider signs is the one issued. Crash-safe order of `start`:
1. One transaction reserves the number (`reserve_number`); nothing is sent yet.
2. InitiatePayment with the document's identity and amounts. A crash during the call leaves a
   reservation with no payment: it expires and the next receipt of the series takes its number
   (the customer's QR was never shown, since the till had no answer).
3. The signed input is checked against our UID and amounts; then one transaction stores the
   payment (`pending`), extends the reservation over the QR's validity, and remembers the
   answer a replay of the request gets.
`poll` asks GetPaymentStatus and journals the outcome: `completed` (the receipt may be issued
with it), or `expired`/`failed`, which release the reservation like a declined card. IRIS
cannot work offline: a provider out of reach is a 503 (nothing is reserved once the breaker is
open; the first call that finds the provider gone releases what it reserved). A request_id whose
document exists without a remembered answer (still in flight, or released) is a 409, never a
second number.
"""

from __future__ import annotations

import base64
import io
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, WithJsonSchema

import offline_store as store
from agent.core.card_payments import SignedInputWording, check_signed_input, payment_reference
from agent.core.errors import (
    AmountExceedsTotal,
    IrisPaymentNotFound,
    IrisUnavailable,
    ProviderRejected,
    ProviderSignatureMismatch,
    ProviderSignatureUnusable,
    SignRequestSettled,
)
from agent.core.issuing import Draft, release_reservation, reserve_number
from agent.core.provider_health import note_outcome
from agent.core.request_identity import Answer, canonical, remember_created, remembered_answer
from agent.core.runtime import Runtime
from agent.elise.outcomes import (
    AadeDown,
    IrisInitiated,
    IrisStatus,
    Rejected,
    Unauthorized,
    Unreachable,
)
from agent.elise.requests import IrisPaymentRequest as ProviderIrisRequest
from agent.fiscal.amounts import DocumentTotals
from agent.fiscal.document_builder import price_lines
from agent.fiscal.errors import FieldProblem
from agent.fiscal.receipt_model import IrisPaymentRequest
from printers.qr_image import qr_image

ENDPOINT = "payments/iris"
# A QR still unpaid this long after its validity is expired here even if the provider still
# says Pending: the customer can no longer pay it.
GRACE = timedelta(seconds=30)
DEFAULT_VALIDITY = timedelta(minutes=3)
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Cents = Annotated[str, WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{2}$"})]
IrisStatusName = Literal["pending", "completed", "expired", "failed", "used"]
_SETTLED = {
    "Completed": store.IrisStatus.COMPLETED,
    "Expired": store.IrisStatus.EXPIRED,
    "Failed": store.IrisStatus.FAILED,
}


class IrisPaymentAnswer(BaseModel):
    """An IRIS payment: the QR to show the customer (text and PNG), its validity, the IRIS ids
    and the provider's signature over the reserved receipt's identity and amounts."""

    iris_payment_id: int
    receipt_id: int
    series: str
    number: int
    issued_at: Timestamp
    uid: str
    amount: Cents
    status: IrisStatusName
    qr: str
    qr_png_base64: str
    valid_until: Timestamp
    end_to_end_id: str
    authorisation_request_id: str
    merchant_id: str
    signed_input: str
    signature: str
    qr_print: Literal["none", "queued", "printed"] = "none"


def qr_png(text: str) -> str:
    """The QR as a PNG for the customer display, base64 (4 px modules, at most 400 px)."""
    image = qr_image(text, 4, 400).convert("L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def payment_answer(
    doc: store.StoredDocument, payment: store.StoredIrisPayment, *, qr_print: bool = False
) -> IrisPaymentAnswer:
    """`qr_print`: the QR was queued for the receipt printer in the same transaction."""
    return IrisPaymentAnswer(
        iris_payment_id=payment.id,
        receipt_id=doc.id,
        series=doc.series,
        number=doc.number,
        issued_at=doc.issued_at.isoformat(),
        uid=doc.uid,
        amount=f"{payment.amount:.2f}",
        status=payment.status.value,
        qr=payment.qr,
        qr_png_base64=qr_png(payment.qr),
        valid_until=payment.valid_until.isoformat(),
        end_to_end_id=payment.end_to_end_id,
        authorisation_request_id=payment.authorisation_request_id,
        merchant_id=payment.merchant_id,
        signed_input=payment.signed_input,
        signature=payment.signature,
        qr_print="queued" if qr_print else payment.print_state,
    )


IRIS_CHECK = SignedInputWording(
    "signed IRIS input",
    "different data for the IRIS payment",
    "merchant id",
    "do not show its QR",
)


class IrisPaymentService:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    async def start(self, request: IrisPaymentRequest) -> Answer[IrisPaymentAnswer]:
        rt = self.rt
        stored = canonical(request)
        replay = remembered_answer(
            rt.conn, request.request_id, stored.digest, endpoint=ENDPOINT, model=IrisPaymentAnswer
        )
        if replay is not None:
            return replay
        earlier = store.get_by_request_id(rt.conn, f"iris:{request.request_id}")
        if earlier is not None:
            # Its answer is not remembered: the first call is still waiting on the provider, or
            # it ended without one (released, or a database restored). Never a second number.
            raise SignRequestSettled(
                f"IRIS request {request.request_id} was used before: its reservation "
                f"{earlier.series}/{earlier.number} is {earlier.state.value}; poll or wait for "
                "the first call's answer, or start again with a new request_id"
            )
        amounts = price_lines(
            request.lines,
            prices_include_vat=rt.config.pricing.prices_include_vat,
            discount=request.discount,
        ).totals
        if request.amount > amounts.gross:
            raise AmountExceedsTotal(
                f"the IRIS amount {request.amount} exceeds the receipt total {amounts.gross}",
                [FieldProblem("amount", "greater than the receipt total")],
            )
        if rt.breaker.provider_unreachable:
            raise IrisUnavailable(rt.breaker.last_failure or "provider unavailable")
        now = rt.clock()
        draft = Draft(f"iris:{request.request_id}", stored, "11.1", amounts.gross)
        reserved_until = now + timedelta(seconds=rt.config.terminal.reservation_timeout_s)
        doc = reserve_number(rt, draft, now, reserved_until=reserved_until)
        rt.rollback_guard.advance()
        sent_in = rt.breaker.generation
        outcome = await rt.client.initiate_iris(self._provider_request(doc, amounts, request))
        now = rt.clock()
        note_outcome(rt, outcome, sent_in, reaches_aade=False)
        match outcome:
            case IrisInitiated():
                try:
                    check_signed_input(
                        outcome.signed_input,
                        doc,
                        amounts,
                        request.amount,
                        outcome.merchant_id,
                        IRIS_CHECK,
                    )
                except (ProviderSignatureMismatch, ProviderSignatureUnusable):
                    release_reservation(rt, doc, now)
                    raise
                return self._record(request, stored.digest, doc, outcome, now)
            case Rejected():
                release_reservation(rt, doc, now)
                raise ProviderRejected(
                    "the provider refused the IRIS payment: " + "; ".join(outcome.messages)
                )
            case (
                Unauthorized(message=reason) | AadeDown(message=reason) | Unreachable(reason=reason)
            ):
                release_reservation(rt, doc, now)
                raise IrisUnavailable(reason or "provider unavailable")

    def _provider_request(
        self, doc: store.StoredDocument, amounts: DocumentTotals, request: IrisPaymentRequest
    ) -> ProviderIrisRequest:
        return ProviderIrisRequest(
            payment=payment_reference(self.rt.config, doc, amounts, request.amount)
        )

    def _record(
        self,
        request: IrisPaymentRequest,
        digest: str,
        doc: store.StoredDocument,
        outcome: IrisInitiated,
        now: datetime,
    ) -> Answer[IrisPaymentAnswer]:
        """The payment, the reservation held over its QR's validity, and the replay's answer,
        in one transaction."""
        rt = self.rt
        valid_until = outcome.valid_until or now + DEFAULT_VALIDITY
        new = store.NewIrisPayment(
            document_id=doc.id,
            request_id=request.request_id,
            amount=request.amount,
            merchant_id=outcome.merchant_id,
            end_to_end_id=outcome.end_to_end_id,
            authorisation_request_id=outcome.authorisation_request_id,
            qr=outcome.qr,
            signed_input=outcome.signed_input,
            signature=outcome.signature,
            valid_until=valid_until,
        )
        hold = timedelta(seconds=rt.config.terminal.reservation_timeout_s)
        with store.transaction(rt.conn):
            payment = store.add_iris_payment(rt.conn, new, now=now)
            if request.print_qr:
                store.queue_iris_print(rt.conn, payment.id, now=now)
            doc = store.extend_reservation(
                rt.conn, doc.id, reserved_until=max(valid_until, now) + GRACE + hold, now=now
            )
            answer = remember_created(
                rt.conn,
                request_id=request.request_id,
                endpoint=ENDPOINT,
                digest=digest,
                answer=payment_answer(doc, payment, qr_print=request.print_qr),
                document_id=doc.id,
                now=now,
            )
        if request.print_qr:
            rt.notify_printer()
        return answer

    async def poll(self, payment_id: int) -> IrisPaymentAnswer:
        """The payment's state, asking the provider while it is pending; the outcome journaled,
        the reservation released when it expired or failed."""
        rt = self.rt
        payment = store.get_iris_payment(rt.conn, payment_id)
        if payment is None:
            raise IrisPaymentNotFound(
                f"no IRIS payment {payment_id}", [FieldProblem("iris_payment_id", "unknown")]
            )
        if payment.status == store.IrisStatus.PENDING:
            if rt.breaker.provider_unreachable:
                raise IrisUnavailable(rt.breaker.last_failure or "provider unavailable")
            sent_in = rt.breaker.generation
            outcome = await rt.client.iris_status(payment.end_to_end_id)
            now = rt.clock()
            note_outcome(rt, outcome, sent_in, reaches_aade=False)
            match outcome:
                case IrisStatus(state="Pending") if now <= payment.valid_until + GRACE:
                    pass
                case IrisStatus(state="Pending"):
                    payment = self._settle(payment, store.IrisStatus.EXPIRED, now)
                case IrisStatus(state=state):
                    payment = self._settle(payment, _SETTLED[state], now)
                case Rejected():
                    payment = self._settle(payment, store.IrisStatus.FAILED, now)
                case (
                    Unauthorized(message=reason)
                    | AadeDown(message=reason)
                    | Unreachable(reason=reason)
                ):
                    raise IrisUnavailable(reason or "provider unavailable")
        doc = store.get_document(rt.conn, payment.document_id)
        assert doc is not None
        return payment_answer(doc, payment)

    def _settle(
        self, payment: store.StoredIrisPayment, status: store.IrisStatus, now: datetime
    ) -> store.StoredIrisPayment:
        """The outcome, and for an expired or failed payment its reservation released (like a
        declined card: the next receipt takes the number), in one transaction."""
        rt = self.rt
        with store.transaction(rt.conn):
            settled = store.set_iris_status(rt.conn, payment.id, status, now=now)
            doc = store.get_document(rt.conn, payment.document_id)
            released = status != store.IrisStatus.COMPLETED
            if released and doc is not None and doc.state == store.DocumentState.RESERVED:
                store.extend_reservation(
                    rt.conn, doc.id, reserved_until=now - timedelta(seconds=1), now=now
                )
        return settled
