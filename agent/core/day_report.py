"""The X and Z reports as typed sections, and the sums they are made of.

One `DayReport` answers `GET /v1/reports/day` (X: a day, changes nothing) and is kept inside every
daily closing (Z: everything after the previous closing). The sums come from the frozen payloads,
the bytes the provider received, so a report adds up what the provider holds, to the cent:
- a sale is an 11.1, a refund an 11.4; their VAT analysis gives net and VAT per category;
- money is counted where it was taken: a card payment an 8.4 (8.5 refund) carried is counted on
  that POS receipt, and the 11.1 (11.4) connected to it, which repeats it with `remarks` naming
  the POS receipt, does not count it again;
- a discount is counted in gross (net + VAT its allowances removed) per VAT category of the
  discounted lines, beside the net and VAT after it;
- an IRIS payment (method 8) is counted on its 11.1 like any method, its remarks naming the
  IRIS transfer, not a POS receipt;
- only documents issued count (pending, delayed, accepted); a rejected one is listed for a person,
  a reservation never completed (void) apart, an 8.6 order slip is not a sale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import ConfigDict

from agent.core.report import Report
from agent.fiscal.frozen_payloads import (
    FrozenCardSums,
    FrozenPayment,
    FrozenSaleSums,
    discount_by_category,
)
from agent.fiscal.tax_codes import CARD_PAYMENT, PAYMENT_METHODS, VAT_RATES

ZERO = Decimal("0.00")
ISSUED_STATES = ("pending", "delayed", "accepted")
SALE_TYPES = {"11.1": "sales", "11.4": "refunds"}
CARD_TYPES = {"8.4": "sales", "8.5": "refunds"}


class Part(Report):
    model_config = ConfigDict(frozen=True)


class SeriesNumbers(Part):
    """One series of one document type: its first and last number in the period and how many
    of them were issued, voided (a card reservation never completed) or rejected."""

    type_code: str
    series: str
    first: int
    last: int
    issued: int
    void: int
    rejected: int


class VatLine(Part):
    """One VAT category: net and VAT after discounts, and the discount given in gross."""

    category: int
    rate: Decimal
    net: Decimal
    vat: Decimal
    gross: Decimal
    discount: Decimal = ZERO


class MethodLine(Part):
    method: int
    name: str
    amount: Decimal
    tips: Decimal
    payments: int


class TerminalLine(Part):
    terminal_id: str
    amount: Decimal
    tips: Decimal
    transactions: int


class Flow(Part):
    """Sales (11.1, 8.4) or refunds (11.4, 8.5): VAT from the 11.x, money where it was taken."""

    documents: int
    net: Decimal
    vat: Decimal
    gross: Decimal
    discount: Decimal = ZERO
    by_vat: list[VatLine]
    by_method: list[MethodLine]
    card_terminals: list[TerminalLine]


class VoidedReservation(Part):
    receipt_id: int
    type_code: str
    series: str
    number: int


class DrawerCounts(Part):
    """Drawer kicks: after a cash sale, asked by the till without a sale, failed."""

    with_sale: int
    without_sale: int
    failed: int


class OpenTables(Part):
    """Food service now: tables with order slips (8.6) no receipt closed yet, and their total."""

    tables: int
    order_slips: int
    balance: Decimal


class OfflineBacklog(Part):
    """Documents not at the provider now, the oldest and its legal deadline."""

    documents: int
    oldest_issued_at: datetime | None
    deadline: datetime | None


class NeedsPerson(Part):
    receipt_id: int
    type_code: str
    series: str
    number: int
    reason: str


class UnheldOrder(Part):
    """An order slip (8.6) the provider holds open that no open table of this register holds:
    it blocks the merchant once `tables.open_order_limit_hours` old. `known_here` says what the
    register knows of its MARK (None: nothing, it was never issued here or before a restore)."""

    mark: int
    table: str | None
    issued_at: datetime | None
    total: Decimal | None
    known_here: str | None = None


class OrderReconciliation(Part):
    """The provider's open order slips (8.6) against the tables this register holds open:
    `matched` (open on both sides), `resolved` (MARK taken from the provider's list), `resent`
    (not yet at the provider: the sync sends it now), `flagged` (open here, not at the
    provider) and `unheld` (open at the provider, not here)."""

    provider_open: int
    matched: int
    resolved: int
    resent: int
    flagged: list[str]
    unheld: list[UnheldOrder]
    error: str | None = None
    checked_at: datetime | None = None


class Reconciliation(Part):
    """The provider's list of the day against the store (`pos-agent reconcile`), and its open
    order slips against the register's open tables (`orders`, None where never looked at)."""

    day: date
    checked_at: datetime
    provider_documents: int
    matched: int
    resolved: int
    resent: int
    flagged: list[str]
    error: str | None = None
    orders: OrderReconciliation | None = None


class DayReport(Part):
    """`kind` X: one day (`day`), nothing changes. Z: closing `number`, the documents with ids in
    (`after_receipt_id`, `last_receipt_id`], made at `generated_at`."""

    kind: Literal["X", "Z"]
    generated_at: datetime
    day: date | None = None
    number: int | None = None
    after_receipt_id: int | None = None
    last_receipt_id: int | None = None
    journal_seq: int | None = None
    documents: list[SeriesNumbers]
    sales: Flow
    refunds: Flow
    voided_reservations: list[VoidedReservation]
    drawer: DrawerCounts
    open_tables: OpenTables
    backlog: OfflineBacklog
    needs_person: list[NeedsPerson]
    reconciliation: Reconciliation | None = None


@dataclass(frozen=True)
class DocumentFacts:
    """What the sums need of one stored document."""

    id: int
    type_code: str
    series: str
    number: int
    state: str
    mark_unknown: bool
    last_error: str | None
    payload: bytes | None


@dataclass
class _FlowSums:
    documents: int = 0
    vat: dict[int, list[Decimal]] = field(
        default_factory=lambda: defaultdict(lambda: [ZERO, ZERO, ZERO])
    )
    methods: dict[int, list[Any]] = field(
        default_factory=lambda: defaultdict(lambda: [ZERO, ZERO, 0])
    )
    terminals: dict[str, list[Any]] = field(
        default_factory=lambda: defaultdict(lambda: [ZERO, ZERO, 0])
    )

    def pay(self, method: int, amount: Decimal, tip: Decimal, terminal: str | None) -> None:
        line = self.methods[method]
        line[0] += amount
        line[1] += tip
        line[2] += 1
        if method == CARD_PAYMENT and terminal is not None:
            card = self.terminals[terminal]
            card[0] += amount
            card[1] += tip
            card[2] += 1

    def flow(self) -> Flow:
        by_vat = [
            VatLine(
                category=cat,
                rate=VAT_RATES[cat],
                net=net,
                vat=vat,
                gross=net + vat,
                discount=discount,
            )
            for cat, (net, vat, discount) in sorted(self.vat.items())
        ]
        net = sum((line.net for line in by_vat), ZERO)
        vat = sum((line.vat for line in by_vat), ZERO)
        return Flow(
            documents=self.documents,
            net=net,
            vat=vat,
            gross=net + vat,
            discount=sum((line.discount for line in by_vat), ZERO),
            by_vat=by_vat,
            by_method=[
                MethodLine(method=code, name=PAYMENT_METHODS[code], amount=a, tips=t, payments=n)
                for code, (a, t, n) in sorted(self.methods.items())
            ],
            card_terminals=[
                TerminalLine(terminal_id=name, amount=a, tips=t, transactions=n)
                for name, (a, t, n) in sorted(self.terminals.items())
            ],
        )


@dataclass(frozen=True)
class DaySums:
    documents: list[SeriesNumbers]
    sales: Flow
    refunds: Flow
    voided_reservations: list[VoidedReservation]
    needs_person: list[NeedsPerson]


def sum_documents(documents: Iterable[DocumentFacts]) -> DaySums:
    """Series numbers, the two flows, voided reservations and what needs a person."""
    flows = {"sales": _FlowSums(), "refunds": _FlowSums()}
    series: dict[tuple[str, str], list[int]] = {}
    voided: list[VoidedReservation] = []
    needs: list[NeedsPerson] = []
    for doc in documents:
        _count_series(series, doc)
        if doc.state == "void":
            voided.append(
                VoidedReservation(
                    receipt_id=doc.id, type_code=doc.type_code, series=doc.series, number=doc.number
                )
            )
        reason = _needs_person(doc)
        if reason is not None:
            needs.append(
                NeedsPerson(
                    receipt_id=doc.id,
                    type_code=doc.type_code,
                    series=doc.series,
                    number=doc.number,
                    reason=reason,
                )
            )
        if doc.state in ISSUED_STATES and doc.payload is not None:
            _add_payload(flows, doc.type_code, doc.payload)
    return DaySums(
        documents=[
            SeriesNumbers(
                type_code=type_code,
                series=name,
                first=numbers[0],
                last=numbers[1],
                issued=numbers[2],
                void=numbers[3],
                rejected=numbers[4],
            )
            for (type_code, name), numbers in sorted(series.items())
        ],
        sales=flows["sales"].flow(),
        refunds=flows["refunds"].flow(),
        voided_reservations=voided,
        needs_person=needs,
    )


def _count_series(series: dict[tuple[str, str], list[int]], doc: DocumentFacts) -> None:
    numbers = series.setdefault((doc.type_code, doc.series), [doc.number, doc.number, 0, 0, 0])
    numbers[0] = min(numbers[0], doc.number)
    numbers[1] = max(numbers[1], doc.number)
    if doc.state in ISSUED_STATES:
        numbers[2] += 1
    elif doc.state == "void":
        numbers[3] += 1
    elif doc.state == "rejected":
        numbers[4] += 1


def _needs_person(doc: DocumentFacts) -> str | None:
    if doc.state == "rejected":
        return f"rejected by the provider: {doc.last_error or 'no reason recorded'}"
    if doc.mark_unknown:
        return "accepted without a known MARK"
    return None


def _add_payload(flows: dict[str, _FlowSums], type_code: str, payload: bytes) -> None:
    if type_code in SALE_TYPES:
        invoice = FrozenSaleSums.of_payload(payload)
        sums = flows[SALE_TYPES[type_code]]
        sums.documents += 1
        for bucket in invoice.vat_analysis:
            line = sums.vat[bucket.vat_category]
            line[0] += bucket.net
            line[1] += bucket.vat
        for category, discount in discount_by_category(invoice.details).items():
            sums.vat[category][2] += discount
        for entry in invoice.payments:
            if _carried_by_pos_receipt(entry):
                continue
            sums.pay(entry.method, entry.amount, entry.tip, entry.terminal_id)
    elif type_code in CARD_TYPES:
        sums = flows[CARD_TYPES[type_code]]
        for card in FrozenCardSums.of_payload(payload).card_lines:
            sums.pay(CARD_PAYMENT, card.amount, card.tip, card.terminal_id)


def _carried_by_pos_receipt(entry: FrozenPayment) -> bool:
    """A card payment an 11.x repeats from its connected 8.4 (8.5): the remarks name the POS
    receipt, which counts it. Other remarks (an IRIS transfer's id) do not make it a repeat."""
    return entry.remarks is not None and entry.method == CARD_PAYMENT
