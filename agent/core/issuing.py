"""Issue a receipt: validate, number, freeze, send, fall back offline, queue the print.

The order is the product's core promise (a receipt is never lost and never issued twice): the
number is allocated and the exact provider payload committed in one transaction *before* the
first network call; the provider's answer (or the offline fallback) is committed in a second one. A crash between the two leaves a
`pending` row that the daemon re-sends on start; the provider's duplicate answer then gives us
the MARK, so nothing is lost and nothing is issued twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import offline_store as store
from agent.clock import ATHENS
from agent.config import AgentConfig
from agent.core.answers import DocumentAnswer, document_answer
from agent.core.drawer import sale_followups, wants_cash_kick
from agent.core.errors import (
    ConnectedReceiptUnknown,
    IrisPaymentNotCompleted,
    IrisPaymentNotFound,
    OutcomeNotRecorded,
    ProviderRejected,
    RequestIdReused,
    ReservationUsed,
    ReservationVoided,
    SignatureExpired,
    SignatureNotActive,
    SignaturesMixed,
    SignedAmountDiffers,
    SignedTotalDiffers,
    SignedTypeDiffers,
    UnknownSignature,
)
from agent.core.print_orders import wants_print
from agent.core.request_identity import Answer, CanonicalRequest, canonical, wire
from agent.core.returns import check_credit, check_pos_return
from agent.core.runtime import Runtime
from agent.core.transmission import Transmitter
from agent.fiscal.document_builder import (
    check_payments_cover_total,
    document_identity,
    identity_uid,
    pos_payload,
    price_lines,
    receipt_payload,
    series_for,
)
from agent.fiscal.errors import FieldProblem, PaymentsMismatch
from agent.fiscal.provider_payloads import DocumentIdentity, PaymentEntry, pos_card_entries
from agent.fiscal.receipt_model import Delivery, Payment, PosReceiptRequest, ReceiptRequest
from agent.json_codec import dumps, loads

PayloadBuilder = Callable[[DocumentIdentity], bytes]
POS_TYPES = ("8.4", "8.5")
# The POS receipt that carries a retail document's card payment, and how a payment names it.
CONNECTED_POS_TYPE = {"11.1": "8.4", "11.4": "8.5"}
DOCUMENT_TITLES_SHORT = {"8.4": "Απόδειξη Είσπραξης POS", "8.5": "Απόδειξη Επιστροφής POS"}

AlsoWithin = Callable[[store.StoredDocument], None]
# What proves a payment was made for a reserved receipt, by payment index: a card's provider
# signature, or a completed IRIS payment.
Proofs = dict[int, store.StoredSignature | store.StoredIrisPayment]


@dataclass(frozen=True)
class Draft:
    """What a request brings to its document; the number and the issue time come later."""

    request_id: str
    request: CanonicalRequest
    type_code: str
    total: Decimal

    @property
    def kind(self) -> store.DocumentKind:
        """8.x documents go to the provider's /Receipt, the others to /Invoice/json."""
        if self.type_code in POS_TYPES:
            return store.DocumentKind.POS_RECEIPT
        return store.DocumentKind.RECEIPT

    def new_document(
        self,
        config: AgentConfig,
        series: str,
        number: int,
        issued_at: datetime,
        *,
        build: PayloadBuilder | None,
        reserved_until: datetime | None = None,
    ) -> store.NewDocument:
        """`build=None` makes a card reservation: its payload is frozen when it is issued."""
        identity = document_identity(self.type_code, series, number, issued_at)
        return store.NewDocument(
            request_id=self.request_id,
            request_hash=self.request.digest,
            kind=self.kind,
            type_code=self.type_code,
            issued_at=issued_at,
            uid=identity_uid(config, identity),
            internal_id=identity.internal_id,
            request_json=self.request.json,
            total_amount=self.total,
            payload=None if build is None else build(identity),
            reserved_until=reserved_until,
        )

    def take_over(
        self,
        conn: sqlite3.Connection,
        document_id: int,
        *,
        reserved_until: datetime,
        now: datetime,
    ) -> store.StoredDocument:
        """An abandoned reservation's number, issue time and UID become this request's."""
        return store.take_over_reservation(
            conn,
            document_id,
            request_id=self.request_id,
            request_hash=self.request.digest,
            request_json=self.request.json,
            total_amount=self.total,
            reserved_until=reserved_until,
            now=now,
        )


@dataclass(frozen=True)
class Prepared:
    """A document a use case derived from stored state, ready for `issue_prepared`: `build`
    gets the identity and the payments (with their signatures), `within` runs in the freezing
    transaction."""

    draft: Draft
    build: Callable[[DocumentIdentity, list[PaymentEntry]], bytes]
    payments: Sequence[Payment]
    delivery: Delivery
    within: AlsoWithin | None = None


def reusable_reservation(
    conn: sqlite3.Connection, series: str, type_code: str, now: datetime
) -> store.StoredDocument | None:
    """An expired reservation of this series and type from today: the next document takes its
    number (the UID carries the date, so an older one can only be voided)."""
    today = now.astimezone(ATHENS).date()
    for doc in store.abandoned_reservations(conn, series=series, before=now):
        if doc.issued_at.astimezone(ATHENS).date() == today and doc.type_code == type_code:
            return doc
    return None


def reserve_number(
    rt: Runtime, draft: Draft, now: datetime, *, reserved_until: datetime
) -> store.StoredDocument:
    """A payment's reservation (card or IRIS): today's abandoned reservation of the series,
    else the next number, with no payload until the receipt is issued."""
    series = series_for(rt.config, draft.type_code)
    rt.rollback_guard.refuse_if_behind(series)
    with store.transaction(rt.conn):
        abandoned = reusable_reservation(rt.conn, series, draft.type_code, now)
        if abandoned is not None:
            return draft.take_over(rt.conn, abandoned.id, reserved_until=reserved_until, now=now)
        return store.insert_document(
            rt.conn,
            series,
            lambda number: draft.new_document(
                rt.config, series, number, now, build=None, reserved_until=reserved_until
            ),
            now=now,
        )


def release_reservation(rt: Runtime, doc: store.StoredDocument, now: datetime) -> None:
    """A payment that will not happen frees its number for the next receipt of the series."""
    if doc.state == store.DocumentState.RESERVED:
        # The clock has whole seconds and "abandoned" means reserved_until < now: expire it
        # a second ago, or a receipt in the same second would take a new number instead.
        expired = now - timedelta(seconds=1)
        with store.transaction(rt.conn):
            store.extend_reservation(rt.conn, doc.id, reserved_until=expired, now=now)


class IssuingService:
    def __init__(self, runtime: Runtime, transmitter: Transmitter) -> None:
        self.rt = runtime
        self.transmitter = transmitter

    async def issue_receipt(self, request: ReceiptRequest) -> Answer[DocumentAnswer]:
        stored = canonical(request)
        replay = self._replay(request.request_id, stored.digest)
        if replay is not None:
            return replay
        priced = price_lines(
            request.lines,
            prices_include_vat=self.rt.config.pricing.prices_include_vat,
            discount=request.discount,
        )
        check_payments_cover_total(request, priced.totals)
        original = (
            None
            if request.correlated_receipt_id is None
            else check_credit(self.rt.conn, self.rt.config, request)
        )
        signatures = self._signatures_for(request.payments)
        connected = self._connected_payments(request, priced.totals.gross)
        correlated = _original_marks(original)

        def build(identity: DocumentIdentity) -> bytes:
            payments = payment_entries(request.payments, signatures) + connected
            return dumps(
                receipt_payload(self.rt.config, identity, request, priced, payments, correlated)
            )

        draft = Draft(request.request_id, stored, request.type, priced.totals.gross)
        return await self._issue(draft, build, signatures, request.delivery, original=original)

    async def issue_pos_receipt(self, request: PosReceiptRequest) -> Answer[DocumentAnswer]:
        stored = canonical(request)
        replay = self._replay(request.request_id, stored.digest)
        if replay is not None:
            return replay
        original = (
            None
            if request.correlated_receipt_id is None
            else check_pos_return(self.rt.conn, request)
        )
        signatures = self._signatures_for(request.payments)
        total = sum((p.amount for p in request.payments), Decimal("0"))
        correlated = _original_marks(original)

        def build(identity: DocumentIdentity) -> bytes:
            payments = payment_entries(request.payments, signatures)
            return dumps(pos_payload(self.rt.config, identity, request, payments, correlated))

        draft = Draft(request.request_id, stored, request.type, total)
        return await self._issue(draft, build, signatures, request.delivery, original=original)

    def _connected_payments(self, request: ReceiptRequest, gross: Decimal) -> list[PaymentEntry]:
        """A receipt paid by card on the POS receipts it connects (11.1 → 8.4, 11.4 → 8.5)
        and sent without payments carries those card payments, as the provider's QA flow does
        (docs/provider.md §5): they are read from the POS receipts this register issued, and
        must add up to the receipt's total."""
        if request.payments or not request.connected_marks:
            return []
        pos_type = CONNECTED_POS_TYPE[request.type]
        entries: list[PaymentEntry] = []
        for index, mark in enumerate(request.connected_marks):
            doc = store.get_by_mark(self.rt.conn, mark)
            if doc is None or doc.type_code != pos_type or doc.payload is None:
                raise ConnectedReceiptUnknown(
                    f"MARK {mark} is not a {pos_type} POS receipt of this register",
                    [
                        FieldProblem(
                            f"connected_marks[{index}]",
                            f"no {pos_type} with this MARK was issued here, so its card payment "
                            "is unknown: give the payment in payments (method 7 with the "
                            "terminal's transaction_id)",
                        )
                    ],
                )
            reference = f"{DOCUMENT_TITLES_SHORT[pos_type]} {doc.series} {doc.number}, ΜΑΡΚ {mark}"
            entries += pos_card_entries(loads(doc.payload), reference)
        paid = sum((entry.amount for entry in entries), Decimal("0"))
        if paid != gross:
            raise PaymentsMismatch(
                f"the connected POS receipts paid {paid} but the receipt total is {gross}",
                [
                    FieldProblem(
                        "connected_marks",
                        f"their card payments add up to {paid}, not the total {gross}: give the "
                        "payments explicitly when a POS receipt paid only part of this one",
                    )
                ],
            )
        return entries

    async def issue_prepared(
        self, request_id: str, digest: str, prepare: Callable[[], Prepared]
    ) -> Answer[DocumentAnswer]:
        """For a document derived from stored state (an order slip, a table's closing receipt).

        The replay check comes first, so a repeated request answers with its document even when
        the state it was derived from has moved on (the table is closed now); then `prepare`
        reads the store and checks the rules, and `within` joins the transaction that freezes
        the document (the table's rows change together with it, or not at all).
        """
        replay = self._replay(request_id, digest)
        if replay is not None:
            return replay
        prepared = prepare()
        signatures = self._signatures_for(prepared.payments)

        def build(identity: DocumentIdentity) -> bytes:
            return prepared.build(identity, payment_entries(prepared.payments, signatures))

        return await self._issue(
            prepared.draft, build, signatures, prepared.delivery, within=prepared.within
        )

    def _replay(self, request_id: str, digest: str) -> Answer[DocumentAnswer] | None:
        existing = store.get_by_request_id(self.rt.conn, request_id)
        if existing is None:
            return None
        if existing.request_hash != digest:
            raise RequestIdReused(request_id)
        # The outcome read here may come from a sync that committed without waiting for the
        # disk (a power cut could take it back, and a re-send's 409 carries no
        # authentication code): on disk before the till is told.
        store.make_durable(self.rt.conn)
        return Answer(document_answer(self.rt, existing), created=False)

    def _signatures_for(self, payments: Sequence[Payment]) -> Proofs:
        """Card payments signed through /v1/payments/sign: all for one reserved document."""
        found: Proofs = {}
        now = self.rt.clock()
        for index, payment in enumerate(payments):
            if payment.iris_payment_id is not None:
                found[index] = self._iris_payment(index, payment, payment.iris_payment_id)
                continue
            if payment.signature_id is None:
                continue
            path = f"payments[{index}].signature_id"
            signature = store.get_signature(self.rt.conn, payment.signature_id)
            if signature is None:
                raise UnknownSignature(
                    "no such signature",
                    [FieldProblem(path, "unknown signature_id")],
                )
            if signature.status != store.SignatureStatus.ACTIVE:
                raise SignatureNotActive(
                    f"signature {signature.id} is {signature.status}; sign again",
                    [FieldProblem(path, "signature already used or superseded")],
                )
            if signature.expires_at is not None and signature.expires_at <= now:
                raise SignatureExpired(
                    "the payment signature expired; sign again with receipt_id",
                    [FieldProblem(path, "expired")],
                )
            if signature.amount != payment.amount or signature.terminal_id != payment.terminal_id:
                raise SignedAmountDiffers(
                    f"the signature was made for {signature.amount} on terminal {signature.terminal_id}",
                    [FieldProblem(path, "amount or terminal differ from what was signed")],
                )
            found[index] = signature
        if len({s.document_id for s in found.values()}) > 1:
            raise SignaturesMixed(
                "all card signatures of a receipt must come from one sign call chain",
                [FieldProblem("payments", "signatures belong to different receipts")],
            )
        return found

    def _iris_payment(
        self, index: int, payment: Payment, payment_id: int
    ) -> store.StoredIrisPayment:
        """A completed IRIS payment of this amount, not used by another receipt."""
        path = f"payments[{index}].iris_payment_id"
        iris = store.get_iris_payment(self.rt.conn, payment_id)
        if iris is None:
            raise IrisPaymentNotFound(
                f"no IRIS payment {payment_id}", [FieldProblem(path, "unknown iris_payment_id")]
            )
        if iris.status != store.IrisStatus.COMPLETED:
            raise IrisPaymentNotCompleted(
                f"IRIS payment {payment_id} is {iris.status.value}, not completed",
                [FieldProblem(path, f"the payment is {iris.status.value}")],
            )
        if iris.amount != payment.amount:
            raise SignedAmountDiffers(
                f"the IRIS payment was for {iris.amount}",
                [FieldProblem(path, "the amount differs from the IRIS payment's")],
            )
        return iris

    async def _issue(
        self,
        draft: Draft,
        build: PayloadBuilder,
        signatures: Proofs,
        delivery: Delivery,
        *,
        within: AlsoWithin | None = None,
        original: store.StoredDocument | None = None,
    ) -> Answer[DocumentAnswer]:
        """`original`: the receipt a return names by id; while it has no MARK the return is
        not sent but held offline behind it (`agent.core.returns` states the order)."""
        rt = self.rt
        now = rt.clock()
        try:
            with store.transaction(rt.conn):
                doc = self._freeze(draft, build, signatures, now)
                if within is not None:
                    within(doc)
        except sqlite3.IntegrityError:
            replay = self._replay(draft.request_id, draft.request.digest)
            if replay is None:
                raise
            return replay
        rt.rollback_guard.advance()
        printing = wants_print(rt, delivery)
        kick = wants_cash_kick(rt, doc)
        followups = sale_followups(rt, printing=printing, kick=kick)
        try:
            if original is not None and original.mark is None:
                doc = self.transmitter.hold(doc, original, then=followups)
            else:
                doc = await self.transmitter.transmit(doc, then=followups)
        except Exception as exc:
            fault = store.storage_fault(exc)
            if fault is None:
                raise
            raise OutcomeNotRecorded(
                fault.value, str(exc)[:200], receipt_id=doc.id, name=f"{doc.series}/{doc.number}"
            ) from exc
        if doc.state == store.DocumentState.REJECTED:
            raise ProviderRejected(
                f"the provider refused the document: {doc.last_error}",
                detail={"receipt": wire(document_answer(rt, doc, delivery))},
            )
        if printing or kick:
            rt.notify_printer()
        return Answer(document_answer(rt, doc, delivery), created=True)

    def _freeze(
        self,
        draft: Draft,
        build: PayloadBuilder,
        signatures: Proofs,
        now: datetime,
    ) -> store.StoredDocument:
        """Inside the transaction: the number (new or reserved) and the exact payload."""
        rt = self.rt
        series = series_for(rt.config, draft.type_code)
        rt.rollback_guard.refuse_if_behind(series)
        reservation = self._reservation_to_use(signatures, series, draft, now)
        if reservation is None:
            return store.insert_document(
                rt.conn,
                series,
                lambda number: draft.new_document(rt.config, series, number, now, build=build),
                now=now,
            )
        draft.take_over(rt.conn, reservation.id, reserved_until=now + timedelta(seconds=1), now=now)
        identity = DocumentIdentity(
            reservation.type_code,
            reservation.series,
            reservation.number,
            reservation.issued_at,
            reservation.internal_id,
        )
        # Packed against the (first) card signature it carries: its bytes are stored once.
        card = next(
            (p for p in signatures.values() if not isinstance(p, store.StoredIrisPayment)), None
        )
        doc = store.freeze_payload(
            rt.conn,
            reservation.id,
            build(identity),
            now=now,
            signature_id=None if card is None else card.id,
        )
        for proof in signatures.values():
            if isinstance(proof, store.StoredIrisPayment):
                store.set_iris_status(rt.conn, proof.id, store.IrisStatus.USED, now=now)
            else:
                store.mark_signature_used(rt.conn, proof.id, now=now)
        return doc

    def _reservation_to_use(
        self,
        signatures: Proofs,
        series: str,
        draft: Draft,
        now: datetime,
    ) -> store.StoredDocument | None:
        """The signed reservation, else an abandoned one of this series from today (no gaps)."""
        if not signatures:
            return reusable_reservation(self.rt.conn, series, draft.type_code, now)
        document_id = next(iter(signatures.values())).document_id
        doc = store.get_document(self.rt.conn, document_id)
        if doc is not None and doc.state == store.DocumentState.VOID:
            raise ReservationVoided(
                f"the signed reservation {doc.series}/{doc.number} was voided before it was "
                f"issued ({doc.last_error}); sign the sale again with a new request_id, then "
                "send this receipt with the new signature_id"
            )
        if doc is None or doc.state != store.DocumentState.RESERVED:
            raise ReservationUsed("the signed receipt was already issued; sign again")
        if doc.type_code != draft.type_code:
            raise SignedTypeDiffers(f"the signature was made for a {doc.type_code} document")
        if doc.total_amount != draft.total:
            raise SignedTotalDiffers(
                f"the signature was made for a total of {doc.total_amount}, the receipt totals {draft.total}; sign again with receipt_id {doc.id}",
            )
        return doc


def _original_marks(original: store.StoredDocument | None) -> list[int] | None:
    """The correlation a return by receipt id freezes: its original's MARK, or an empty list
    filled in at send time while the original has none (None: not a return by receipt id)."""
    if original is None:
        return None
    return [] if original.mark is None else [original.mark]


def payment_entries(payments: Sequence[Payment], signatures: Proofs) -> list[PaymentEntry]:
    """The payload's payment entries: each payment with its signature's proof, keyed by the
    payment's index (a card's signature, an IRIS payment; none for cash)."""
    entries = []
    for index, payment in enumerate(payments):
        signature = signatures.get(index)
        if isinstance(signature, store.StoredIrisPayment):
            entries.append(_iris_entry(payment, signature))
            continue
        entries.append(
            PaymentEntry(
                method=payment.method,
                amount=payment.amount,
                tip=payment.tip,
                terminal_id=payment.terminal_id,
                transaction_id=payment.transaction_id,
                pos_input=signature.input if signature else None,
                provider_signature=signature.signature if signature else None,
            )
        )
    return entries


def _iris_entry(payment: Payment, iris: store.StoredIrisPayment) -> PaymentEntry:
    """Method 8 exactly like a signed card payment: the merchant as the terminal, the
    authorisation request as the transaction, the provider's signature and signed input; the
    IRIS end-to-end id in the remarks (printed with the payment)."""
    return PaymentEntry(
        method=payment.method,
        amount=payment.amount,
        tip=payment.tip,
        terminal_id=iris.merchant_id,
        transaction_id=iris.authorisation_request_id,
        pos_input=iris.signed_input,
        provider_signature=iris.signature,
        remarks=f"IRIS {iris.end_to_end_id}",
    )
