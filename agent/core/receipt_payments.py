"""A card payment on a receipt that already has a MARK (`POST /v1/receipts/{id}/payments`):
the signature made for it, the charge the terminal made, and the provider's
`/Invoice/updatePayment`, journaled before the call so a crash mid-call leaves a record."""

from __future__ import annotations

import hashlib
from datetime import datetime

import offline_store as store
from agent.core.answers import PaymentAnswer
from agent.core.card_payments import refuse_pos_receipt
from agent.core.errors import (
    PaymentAlreadyRecorded,
    PaymentNotSent,
    ProviderRejected,
    ReceiptHasNoMark,
    ReceiptNotFound,
    SignatureExpired,
    SignatureNotActive,
    UnknownSignature,
)
from agent.core.provider_health import note_outcome
from agent.core.request_identity import (
    Answer,
    remember_created,
    remembered_answer,
    request_hash,
)
from agent.core.runtime import Runtime
from agent.elise.outcomes import (
    AadeDown,
    Duplicate,
    PaymentUpdated,
    Rejected,
    Unauthorized,
    Unreachable,
    UpdateOutcome,
)
from agent.fiscal.errors import FieldProblem
from agent.fiscal.receipt_model import ReceiptPaymentRequest
from agent.fiscal.uid import prefixed_vat
from agent.json_codec import dumps

PAY = "receipts/payments"  # the endpoint its remembered answers are stored under


class ReceiptPaymentService:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    async def pay_receipt(
        self, receipt_id: int, request: ReceiptPaymentRequest
    ) -> Answer[PaymentAnswer]:
        """A card payment on a receipt that already has a MARK: /Invoice/updatePayment."""
        rt = self.rt
        digest = request_hash(request)
        replay = remembered_answer(
            rt.conn,
            request.request_id,
            digest,
            endpoint=PAY,
            model=PaymentAnswer,
            document_id=receipt_id,
        )
        if replay is not None:
            return replay
        doc, signature = self._payable(receipt_id, request.signature_id, rt.clock())
        if rt.breaker.is_open:
            # Known down: answer at once instead of holding the till for the whole timeout.
            raise PaymentNotSent(rt.breaker.last_failure or "provider unavailable")
        body = _update_payment_body(rt, doc, signature, request.transaction_id)
        with store.transaction(rt.conn):
            # Write-ahead: a crash mid-call leaves a record to reconcile. A replay with the same
            # request_id re-sends the same body, which the provider applies as a replacement of
            # the receipt's payment details.
            store.append_journal(
                rt.conn,
                "payment.update_sending",
                {
                    "signature_id": signature.id,
                    "transaction_id": request.transaction_id,
                    "request_id": request.request_id,
                    "body_sha256": hashlib.sha256(body).hexdigest(),
                },
                document_id=doc.id,
                at=rt.clock(),
            )
        sent_in = rt.breaker.generation
        outcome = await rt.client.update_payment(body)
        now = rt.clock()
        # Like any other call: a failure here also sends the next receipt offline at once.
        note_outcome(rt, outcome, sent_in)
        payment_mark = _payment_mark(outcome)
        answer = PaymentAnswer(
            receipt_id=doc.id,
            mark=doc.mark,
            payment_mark=payment_mark,
            transaction_id=request.transaction_id,
            amount=f"{signature.amount:.2f}",
        )
        with store.transaction(rt.conn):
            store.mark_signature_used(rt.conn, signature.id, now=now)
            store.append_journal(
                rt.conn,
                "payment.updated",
                {
                    "payment_mark": payment_mark,
                    "signature_id": signature.id,
                    "transaction_id": request.transaction_id,
                },
                document_id=doc.id,
                at=now,
            )
            created = remember_created(
                rt.conn,
                request_id=request.request_id,
                endpoint=PAY,
                digest=digest,
                answer=answer,
                document_id=doc.id,
                now=now,
            )
        return created

    def _payable(
        self, receipt_id: int, signature_id: int, now: datetime
    ) -> tuple[store.StoredDocument, store.StoredSignature]:
        """The MARKed receipt and the active, unexpired signature made for it."""
        rt = self.rt
        doc = store.get_document(rt.conn, receipt_id)
        if doc is None:
            raise ReceiptNotFound(f"no receipt {receipt_id}")
        signature = store.get_signature(rt.conn, signature_id)
        if signature is None or signature.document_id != doc.id:
            raise UnknownSignature(
                "the signature does not belong to this receipt",
                [FieldProblem("signature_id", "not signed for this receipt")],
            )
        if signature.status != store.SignatureStatus.ACTIVE:
            raise SignatureNotActive(f"signature {signature.id} is {signature.status.value}")
        if signature.expires_at is not None and signature.expires_at <= now:
            raise SignatureExpired(
                "the payment signature expired; sign again with receipt_id",
                [FieldProblem("signature_id", "expired")],
            )
        if doc.mark is None:
            raise ReceiptHasNoMark("the receipt has no MARK yet")
        refuse_pos_receipt(doc)
        return doc, signature


def _payment_mark(outcome: UpdateOutcome) -> str:
    """The provider's payment MARK, or the domain error for each other outcome."""
    match outcome:
        case PaymentUpdated(payment_mark=payment_mark):
            return payment_mark
        case Rejected():
            raise ProviderRejected(
                "the provider refused the payment: " + "; ".join(outcome.messages),
            )
        case Duplicate():
            # Retrying would get the same 409 for ever: the provider already holds one.
            raise PaymentAlreadyRecorded(
                "the provider already holds a payment for this receipt: "
                f"{outcome.message or 'duplicate'}; check it in the provider's portal",
            )
        case AadeDown():
            raise PaymentNotSent(f"AADE unavailable: {outcome.message}")
        case Unauthorized():
            raise PaymentNotSent("the provider refused the credentials")
        case Unreachable():
            raise PaymentNotSent(outcome.reason)


def _update_payment_body(
    rt: Runtime, doc: store.StoredDocument, signature: store.StoredSignature, transaction_id: str
) -> bytes:
    """Fixed by the stored signature, the MARK and the transaction id: a replay sends the same."""
    return dumps(
        {
            "mark": doc.mark,
            "entityVatNumber": prefixed_vat(rt.config.issuer.vat),
            "paymentMethods": [
                {
                    "paymentMethodType": "POS",
                    "paymentMethodTypeCode": 7,
                    "amount": signature.amount,
                    "tipAmount": signature.tip,
                    "transactionId": transaction_id,
                    "providersSignature": signature.signature,
                    "posInput": signature.input,
                    "terminalId": signature.terminal_id,
                }
            ],
        }
    )
