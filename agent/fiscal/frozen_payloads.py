"""A frozen provider payload read back by the provider's field names: the parts a printed
document, a connected document, an offline QR and a day's report use.

`provider_payloads` (and `orders` for the 8.6) write these shapes; a printout, a connected
receipt's card payments, a card signed for a MARKed receipt, an offline QR and the day's reports
are made from what was frozen and sent (what the provider and AADE see), so they read it back
here, typed and validated once, rather than by string keys. Only the parts they need are
modelled; the rest of a payload is ignored. Read through `json_codec.loads`, so an
amount keeps its digits (`12.40` stays `12.40`, a whole `2` is `Decimal(2)`): pydantic's own
JSON reading would pass it through a float.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import ClassVar

from pydantic import AliasPath, BaseModel, ConfigDict, Field, model_validator

from agent.fiscal.amounts import DocumentTotals
from agent.fiscal.orders import SlipCancellation
from agent.fiscal.tax_codes import CARD_PAYMENT
from agent.json_codec import loads


class _Read(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class FrozenAllowance(_Read):
    """A line's allowance: the net it took off and that net's VAT. `kind` is its `Type` (0 an
    allowance, the only kind we write)."""

    kind: int | None = Field(None, alias="Type")
    net: Decimal = Field(alias="Amount")
    vat: Decimal = Field(alias="VatAmount")


class FrozenLine(_Read):
    """A `Details` entry of an `/Invoice/json` payload (11.x, 8.6)."""

    descriptions: list[str] = Field(alias="Descriptions", min_length=1)
    quantity: Decimal = Field(alias="Quantity")
    net: Decimal = Field(alias="NetTotal")
    vat: Decimal = Field(alias="VATTotal")
    gross: Decimal = Field(alias="Total")
    vat_category: int = Field(alias="VatCategoryCode")
    unit: int = Field(1, alias="MeasurementUnitCode")
    exemption_cause: int | None = Field(None, alias="VatExemptionCategoryCode")
    record_type: int = Field(0, alias="RecordTypeCode")
    allowances: list[FrozenAllowance] = Field(default_factory=list, alias="AllowancesCharges")

    @property
    def description(self) -> str:
        return self.descriptions[0]

    @property
    def discount(self) -> Decimal:
        """The gross the line's allowances took off (net and VAT as the payload carries them)."""
        return sum((item.net + item.vat for item in self.allowances), Decimal("0.00"))


class FrozenVatRow(_Read):
    """A `VatAnalysis` entry: one VAT category's net and VAT."""

    vat_category: int = Field(alias="VatCategoryCode")
    percent: Decimal = Field(alias="Percentage")
    net: Decimal = Field(alias="UnderlyingValue")
    vat: Decimal = Field(alias="VatAmount")


class FrozenSummaries(_Read):
    net: Decimal = Field(alias="TotalNetAmount")
    vat: Decimal = Field(alias="TotalVATAmount")
    gross: Decimal = Field(alias="TotalGrossValue")


class FrozenCounterParty(_Read):
    vat: str = Field("", alias="Vat")
    name: str = Field("", alias="RegisteredName")


class FrozenTotals(_Read):
    """What any frozen payload totals, and for whom: an invoice's `Summaries`, or a POS
    receipt's `totalAmount` (an 8.4 has no VAT analysis: net is the amount, VAT 0), and its
    `CounterParty` if it names one. What a delayed document's offline QR shows."""

    summaries: FrozenSummaries | None = Field(None, alias="Summaries")
    total: Decimal | None = Field(None, alias="totalAmount")
    counterparty: FrozenCounterParty | None = Field(None, alias="CounterParty")

    @model_validator(mode="after")
    def _has_a_total(self) -> FrozenTotals:
        if self.summaries is None and self.total is None:
            raise ValueError("a frozen payload carries Summaries or totalAmount")
        return self

    @classmethod
    def of_payload(cls, payload: bytes) -> FrozenTotals:
        return cls.model_validate(loads(payload))

    def totals(self) -> DocumentTotals:
        if self.summaries is None:
            assert self.total is not None
            return DocumentTotals(net=self.total, vat=Decimal("0.00"), gross=self.total)
        summaries = self.summaries
        return DocumentTotals(net=summaries.net, vat=summaries.vat, gross=summaries.gross)


def discount_by_category(lines: Iterable[FrozenLine]) -> dict[int, Decimal]:
    """The gross (net + VAT) the lines' allowances (`Type` 0) took off, per VAT category of the
    discounted lines: what a day's report sums."""
    by_category: dict[int, Decimal] = {}
    for line in lines:
        for item in line.allowances:
            if item.kind == 0:
                gross = item.net + item.vat
                by_category[line.vat_category] = (
                    by_category.get(line.vat_category, Decimal("0.00")) + gross
                )
    return by_category


class FrozenDetails(_Read):
    """Only the `Details` of a payload (none in a POS receipt): what its discounts are read from."""

    details: list[FrozenLine] = Field(default_factory=list, alias="Details")


class _PaymentFields(_Read):
    """What a payment carries beside its method and amount; the card fields only for a card."""

    tip: Decimal = Field(Decimal("0.00"), alias="tipAmount")
    terminal_id: str | None = Field(None, alias="terminalId")
    transaction_id: str | None = Field(None, alias="transactionId")
    signature: str | None = Field(None, alias="providersSignature")
    signature_input: str | None = Field(None, alias="posInput")
    remarks: str | None = None


class FrozenPayment(_PaymentFields):
    """A `PaymentDetails.PaymentMethods` entry of an `/Invoice/json` payload."""

    method: int = Field(CARD_PAYMENT, alias="PaymentMethodTypeCode")
    amount: Decimal = Field(alias="Amount")


class FrozenCardLine(_PaymentFields):
    """A `cardlines` entry of a `/Receipt` payload (8.4, 8.5): always a card."""

    method: ClassVar[int] = CARD_PAYMENT
    amount: Decimal


class FrozenPayments(_Read):
    """Only the payments of an `/Invoice/json` payload (none in an 8.6): what the provider
    records as paid, so what opens the cash drawer."""

    payments: list[FrozenPayment] = Field(
        default_factory=list, validation_alias=AliasPath("PaymentDetails", "PaymentMethods")
    )

    @classmethod
    def of_payload(cls, payload: bytes) -> FrozenPayments:
        return cls.model_validate(loads(payload))


class FrozenSaleSums(FrozenDetails, FrozenPayments):
    """What a day's report sums from an 11.x: its VAT analysis, its lines' discounts and its
    payments. A part the payload lacks counts nothing."""

    vat_analysis: list[FrozenVatRow] = Field(default_factory=list, alias="VatAnalysis")

    @classmethod
    def of_payload(cls, payload: bytes) -> FrozenSaleSums:
        return cls.model_validate(loads(payload))


class FrozenCardSums(_Read):
    """What a day's report sums from an 8.4 (8.5): its card lines, none if it lacks them."""

    card_lines: list[FrozenCardLine] = Field(default_factory=list, alias="cardlines")

    @classmethod
    def of_payload(cls, payload: bytes) -> FrozenCardSums:
        return cls.model_validate(loads(payload))


class FrozenInvoice(SlipCancellation):
    """An `/Invoice/json` payload (11.1, 11.4, 8.6). An 8.6 also carries its table, its waiter
    and (`SlipCancellation`) whether it cancels the order slips it connects; an 11.x connects
    the 8.6 it pays in the same `multipleConnectedMarks`."""

    details: list[FrozenLine] = Field(alias="Details")
    summaries: FrozenSummaries = Field(alias="Summaries")
    vat_analysis: list[FrozenVatRow] = Field(alias="VatAnalysis")
    payments: list[FrozenPayment] = Field(
        default_factory=list, validation_alias=AliasPath("PaymentDetails", "PaymentMethods")
    )
    correlated_marks: list[int] = Field(default_factory=list, alias="CorrelatedInvoices")
    counterparty: FrozenCounterParty | None = Field(None, alias="CounterParty")
    table: str = Field("", alias="tableId")
    waiter: str = Field("", validation_alias=AliasPath("DistributionDetails", "salesman"))

    @classmethod
    def of_payload(cls, payload: bytes) -> FrozenInvoice:
        return cls.model_validate(loads(payload))


class FrozenPosReceipt(_Read):
    """A `/Receipt` payload (8.4, 8.5): its card total and card lines, no VAT analysis."""

    total: Decimal = Field(alias="totalAmount")
    card_lines: list[FrozenCardLine] = Field(alias="cardlines")
    connected_marks: list[int] = Field(default_factory=list, alias="multipleConnectedMarks")
    counterparty: FrozenCounterParty | None = Field(None, alias="CounterParty")

    @classmethod
    def of_payload(cls, payload: bytes) -> FrozenPosReceipt:
        return cls.model_validate(loads(payload))
