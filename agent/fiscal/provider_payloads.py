"""Map an issued receipt to the provider's JSON (docs/provider.md §5).

`/Invoice/json` takes the PascalCase EliseCoreDocument (11.1, 11.4), `/Receipt` the camelCase POS
receipt (8.4, 8.5). The send method travels only in `AdditionalDetails.TransmissionMethod`: the
provider does not accept it as a URL parameter, and e-mails by default when it is missing.

`IsDelayedCode` is always the first key: the payload is frozen as bytes before the first send,
and a retry after an outage changes only that one digit (`set_delayed_code`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from agent.config import IssuerConfig
from agent.fiscal.amounts import DocumentTotals, LineAmounts, VatBucket
from agent.fiscal.discounts import Allowance
from agent.fiscal.frozen_payloads import (
    FrozenDetails,
    FrozenPosReceipt,
    FrozenTotals,
    discount_by_category,
)
from agent.fiscal.receipt_model import Customer, Delivery
from agent.fiscal.tax_codes import (
    CARD_PAYMENT,
    INVOICE_TYPE_LABELS,
    MEASUREMENT_UNITS,
    PAYMENT_METHODS,
)
from agent.fiscal.uid import prefixed_vat

RETAIL_INCOME = {"goods": "category1_1", "services": "category1_3"}
RETAIL_INCOME_TYPE = "E3_561_003"
DISCOUNT_LABELS = {"line": "ΕΚΠΤΩΣΗ", "receipt": "ΕΚΠΤΩΣΗ ΑΠΟΔΕΙΞΗΣ"}
_DELAYED_PREFIX = re.compile(rb'^\{"(IsDelayedCode|isDelayedCode)":[0-4],')


@dataclass(frozen=True)
class DocumentIdentity:
    type_code: str
    series: str
    number: int
    issued_at: datetime
    internal_id: str


@dataclass(frozen=True)
class PaymentEntry:
    method: int
    amount: Decimal
    tip: Decimal = Decimal("0")
    terminal_id: str | None = None
    transaction_id: str | None = None
    pos_input: str | None = None
    provider_signature: str | None = None
    remarks: str | None = None


@dataclass(frozen=True)
class PricedLine:
    description: str
    quantity: Decimal
    unit: int
    vat_category: int
    exemption_cause: int | None
    code: str | None
    kind: str
    amounts: LineAmounts
    allowances: tuple[Allowance, ...] = ()

    @property
    def allowances_net(self) -> Decimal:
        return sum((allowance.net for allowance in self.allowances), Decimal("0.00"))


def provider_datetime(value: datetime) -> str:
    """Greek local time without offset, as every provider sample writes `DateIssued`."""
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def transmission_method(delivery: Delivery) -> str:
    """A (archive) unless the POS asked for delivery: the provider e-mails by default otherwise."""
    if delivery.email and delivery.mobile:
        return "C"
    if delivery.mobile:
        return "M"
    if delivery.email:
        return "E"
    return "A"


def set_delayed_code(payload: bytes, code: int) -> bytes:
    """The frozen payload with only `IsDelayedCode` changed."""
    match = _DELAYED_PREFIX.match(payload)
    if match is None:
        raise ValueError("payload does not start with the IsDelayedCode key")
    key = match.group(1)
    return b'{"' + key + b'":' + str(code).encode() + b"," + payload[match.end() :]


def payload_totals(payload: dict[str, Any]) -> DocumentTotals:
    """The totals a frozen payload (as `json_codec.loads` reads it) carries: an invoice's
    `Summaries`, or a POS receipt's card total (an 8.4 has no VAT analysis: net is the amount,
    VAT 0). As Decimal: a whole amount (`12`) reads back from the JSON as an int, and the
    offline QR of such an 8.4 failed."""
    return FrozenTotals.model_validate(payload).totals()


def pos_card_entries(payload: dict[str, Any], reference: str) -> list[PaymentEntry]:
    """The card payments an 8.4 (8.5) carried, as the 11.1 (11.4) connected to it sends them:
    method 7, amount, tip, terminal and transaction, with an empty signature and input (the POS
    receipt carries those), as the provider's QA flow does (TC 02 step 4, docs/provider.md §5).
    `payload` is the frozen 8.4 as `json_codec.loads` reads it. `reference` names the POS
    receipt; it travels in `remarks` and is printed with the payment."""
    return [
        PaymentEntry(
            method=CARD_PAYMENT,
            amount=line.amount,
            tip=line.tip,
            terminal_id=line.terminal_id,
            transaction_id=line.transaction_id,
            pos_input="",
            provider_signature="",
            remarks=reference,
        )
        for line in FrozenPosReceipt.model_validate(payload).card_lines
    ]


def _issuer(issuer: IssuerConfig) -> dict[str, Any]:
    return {
        "RegisteredName": issuer.name,
        "BrandName": issuer.brand,
        "Vat": prefixed_vat(issuer.vat),
        "TaxOffice": issuer.tax_office,
        "Phones": [issuer.phone] if issuer.phone else [],
        "Address": {
            "CountryCode": issuer.address.country_code,
            "City": issuer.address.city,
            "Street": issuer.address.street,
            "Number": issuer.address.number,
            "Postal": issuer.address.postal,
        },
        "BranchCode": issuer.branch,
    }


def _counterparty(customer: Customer | None) -> dict[str, Any] | None:
    """An 11.x names its customer only for delivery: `Vat` stays empty, as in the QA 11.1 (a
    retail document has no counterpart in myDATA; `ReceiptRequest` refuses a customer VAT)."""
    if customer is None or not customer.name:
        return None
    return {
        "RegisteredName": customer.name,
        "Vat": "",
        "Address": {"CountryCode": "GR"},
        "Branch": 0,
    }


def _pos_counterparty(customer: Customer | None) -> dict[str, Any]:
    """Every QA 8.4 body carries `CounterParty` with these keys; empty where we know nothing
    (docs/provider.md §5)."""
    customer = customer or Customer()
    return {
        "RegisteredName": customer.name,
        "code": "",
        "Vat": customer.vat or "",
        "Address": {
            "CountryCode": "GR",
            "Municipality": None,
            "City": None,
            "Street": None,
            "number": None,
            "Postal": None,
        },
        "Branch": 0,
    }


def _additional_details(customer: Customer | None, delivery: Delivery) -> dict[str, Any]:
    customer = customer or Customer()
    details: dict[str, Any] = {
        "TransmissionMethod": transmission_method(delivery),
        "AvoidEmailGrouping": False,
        "SendAsPdf": False,
        "AccountingDepartmentEmails": list(customer.emails) if delivery.email else [],
    }
    if delivery.mobile:
        details["CustomerCellNumbers"] = list(customer.mobile_numbers)
    return details


def _payment_method(entry: PaymentEntry, *, camel: bool) -> dict[str, Any]:
    amount_key = "amount" if camel else "Amount"
    item: dict[str, Any] = {
        "PaymentMethodType": PAYMENT_METHODS[entry.method],
        "PaymentMethodTypeCode": entry.method,
        amount_key: entry.amount,
        "tipAmount": entry.tip,
    }
    if entry.terminal_id is not None:
        item["terminalId"] = entry.terminal_id
        item["transactionId"] = entry.transaction_id
        if entry.provider_signature is not None:
            item["providersSignature"] = entry.provider_signature
            item["posInput"] = entry.pos_input
    if entry.remarks is not None:
        item["remarks"] = entry.remarks
    return item


def _detail(index: int, line: PricedLine) -> dict[str, Any]:
    amounts = line.amounts
    detail: dict[str, Any] = {
        "LineNo": index,
        "Code": line.code or "",
        "Descriptions": [line.description],
        "MeasurementUnitCode": line.unit,
        "MeasurementUnit": MEASUREMENT_UNITS[line.unit],
        "Quantity": line.quantity,
        "UnitPrice": amounts.net_unit_price,
        "AllowancesTotal": line.allowances_net,
        "NetTotal": amounts.net,
        "VatCategory": f"{amounts.rate.normalize():f}%",
        "VatCategoryCode": line.vat_category,
        "VATTotal": amounts.vat,
        "Total": amounts.gross,
        "IsInformative": False,
        "IsHidden": False,
        "RecordTypeCode": 0,
        "IncomeClassification": {
            "ClassificationTypeCode": RETAIL_INCOME_TYPE,
            "ClassificationCategoryCode": RETAIL_INCOME[line.kind],
        },
    }
    if line.exemption_cause is not None:
        detail["VatExemptionCategoryCode"] = line.exemption_cause
    if line.allowances:
        detail["AllowancesCharges"] = [
            _allowance(allowance, amounts.rate) for allowance in line.allowances
        ]
    return detail


def _allowance(allowance: Allowance, rate: Decimal) -> dict[str, Any]:
    """An allowance (Type 0) as EliseCoreDocument describes one: `Amount` is the net it
    removed, `VatAmount` the VAT, `UnderlyingValue` the net it was taken from
    (docs/provider.md "Discounts")."""
    item: dict[str, Any] = {
        "Type": 0,
        "Description": DISCOUNT_LABELS[allowance.kind],
    }
    if allowance.percent is not None:
        item["Percentage"] = allowance.percent
    item |= {
        "Amount": allowance.net,
        "UnderlyingValue": allowance.underlying_net,
        "VatPercentage": rate,
        "VatAmount": allowance.vat,
    }
    return item


def _receipt_allowances(lines: list[PricedLine]) -> list[dict[str, Any]]:
    """The receipt's own discount at document level, one entry per VAT category: the sums of
    the shares its lines carry (informative for the provider; the lines are what myDATA gets)."""
    by_category: dict[int, list[tuple[Allowance, Decimal]]] = {}
    for line in lines:
        for allowance in line.allowances:
            if allowance.kind == "receipt":
                by_category.setdefault(line.vat_category, []).append((allowance, line.amounts.rate))
    entries = []
    for _, items in sorted(by_category.items()):
        first, rate = items[0]
        entries.append(
            _allowance(
                Allowance(
                    "receipt",
                    first.percent,
                    sum((a.underlying_net for a, _ in items), Decimal("0.00")),
                    sum((a.net for a, _ in items), Decimal("0.00")),
                    sum((a.vat for a, _ in items), Decimal("0.00")),
                ),
                rate,
            )
        )
    return entries


def payload_discount(payload: dict[str, Any]) -> Decimal:
    """The discount an 11.x payload gave, in gross (net + VAT of every line allowance): what the
    customer saw taken off and what a day's report sums; 0 for a document without discounts."""
    return sum(payload_discount_by_category(payload).values(), Decimal("0.00"))


def payload_discount_by_category(payload: dict[str, Any]) -> dict[int, Decimal]:
    """`payload_discount` per VAT category of the discounted lines (the X/Z reports' lines)."""
    return discount_by_category(FrozenDetails.model_validate(payload).details)


def invoice_payload(
    *,
    issuer: IssuerConfig,
    identity: DocumentIdentity,
    lines: list[PricedLine],
    vat_buckets: list[VatBucket],
    totals: DocumentTotals,
    payments: list[PaymentEntry],
    customer: Customer | None,
    delivery: Delivery,
    correlated_marks: list[int],
    connected_marks: list[int],
    iapr_sign_policy: int,
    special_category: int = 0,
) -> dict[str, Any]:
    """EliseCoreDocument for `/Invoice/json` (11.1, 11.4). `special_category` is myDATA's
    `SpecialInvoiceCategory` (12 catering for food service, as the QA food-service 11.1)."""
    document: dict[str, Any] = {
        "IsDelayedCode": 0,
        "IAPRSignPolicy": iapr_sign_policy,
        "Currency": "Euro",
        "CurrencyCode": "EUR",
        "InvoiceType": INVOICE_TYPE_LABELS[identity.type_code],
        "InvoiceTypeCode": identity.type_code,
        "SpecialInvoiceCategory": special_category,
        "DocumentTypeCode": "INVOICE",
        "IsDeliveryNote": False,
        "Series": identity.series,
        "Number": str(identity.number),
        "DateIssued": provider_datetime(identity.issued_at),
        "CorrelatedInvoices": list(correlated_marks),
        "multipleConnectedMarks": list(connected_marks),
        "Issuer": _issuer(issuer),
    }
    counterparty = _counterparty(customer)
    if counterparty is not None:
        document["CounterParty"] = counterparty
    document["AllowancesCharges"] = _receipt_allowances(lines)
    document["DistributionDetails"] = {"InternalDocumentId": identity.internal_id}
    document["PaymentDetails"] = {
        "PaymentMethods": [_payment_method(entry, camel=False) for entry in payments]
    }
    document["AdditionalDetails"] = _additional_details(customer, delivery)
    document["Details"] = [_detail(index, line) for index, line in enumerate(lines, start=1)]
    document["Summaries"] = {
        "totalAllowances": sum((line.allowances_net for line in lines), Decimal("0.00")),
        "TotalNetAmount": totals.net,
        "TotalVATAmount": totals.vat,
        "TotalGrossValue": totals.gross,
    }
    document["VatAnalysis"] = [
        {
            "VatCategoryCode": bucket.vat_category,
            "Percentage": bucket.rate,
            "VatAmount": bucket.vat,
            "UnderlyingValue": bucket.net,
        }
        for bucket in vat_buckets
    ]
    return document


def pos_receipt_payload(
    *,
    issuer: IssuerConfig,
    identity: DocumentIdentity,
    payments: list[PaymentEntry],
    customer: Customer | None,
    delivery: Delivery,
    connected_marks: list[int],
    iapr_sign_policy: int,
    correlated_marks: list[int] | None = None,
) -> dict[str, Any]:
    """The camelCase `/Receipt` model for 8.4 / 8.5, shaped like the provider's QA bodies: they
    always carry `CounterParty`, `totalAmountAC` and `miscellaneousData`, sent empty where we
    have nothing (docs/provider.md §5). An 8.5 that names its 8.4 by receipt id carries it in
    `correlatedInvoices` (empty until the 8.4 has a MARK); other 8.x bodies stay as they were."""
    total = sum((entry.amount for entry in payments), Decimal("0"))
    document: dict[str, Any] = {
        "isDelayedCode": 0,
        "iaprSignPolicy": iapr_sign_policy,
        "currency": "Euro",
        "currencyCode": "EUR",
        "series": identity.series,
        "number": str(identity.number),
        "dateIssued": provider_datetime(identity.issued_at),
        "invoiceType": INVOICE_TYPE_LABELS[identity.type_code],
        "invoiceTypeCode": identity.type_code,
        "documentTypeCode": "INVOICE",
        "thirdPartyCollection": False,
        "providerSignatureIdentifier": str(identity.number),
        "exchangeCurrencyRate": Decimal("1.00000"),
        "totalAmount": total,
        "totalAmountAC": Decimal("0"),
        "Issuer": _issuer(issuer),
        "CounterParty": _pos_counterparty(customer),
    }
    document["cardlines"] = [
        {
            "lineNo": index,
            "amount": entry.amount,
            "tipAmount": entry.tip,
            "transactionId": entry.transaction_id,
            "providersSignature": entry.provider_signature or "",
            "posInput": entry.pos_input or "",
            "terminalId": entry.terminal_id,
            "remarks": "Κάρτα",
            "isInformative": False,
            "isHidden": False,
        }
        for index, entry in enumerate(payments, start=1)
    ]
    document["AdditionalDetails"] = _additional_details(customer, delivery)
    document["internalDocumentId"] = identity.internal_id
    document["miscellaneousData"] = {"comments1": ""}
    if correlated_marks is not None:
        document["correlatedInvoices"] = list(correlated_marks)
    document["multipleConnectedMarks"] = list(connected_marks)
    return document
