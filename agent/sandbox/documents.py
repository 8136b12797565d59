"""Validation of posted documents: `/Invoice/json` (EliseCoreDocument) and `/Receipt` (8.4/8.5).

The provider matches JSON keys case-insensitively (samples mix PascalCase and camelCase), so the
payload is parsed with its keys lower-cased (`loads_folded`). Checks follow the provider's rules:
required identity fields, per-line net + VAT = gross, summaries = sum of lines, payments = gross
(tips on top), VAT categories 1..10 with an exemption code for 7, no counterpart VAT on a
retail 11.x, and on a POS receipt the fields the provider's QA bodies always carry
(`CounterParty`, `totalAmountAC`, `miscellaneousData`). Pure functions; the app adds
the checks that need state (issuer binding, duplicates, card signatures).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from agent.fiscal.uid import bare_vat, document_uid

ATHENS = ZoneInfo("Europe/Athens")
_EXEMPTION_KEY = "vatexemptioncategorycode"
# What both of the provider's QA 8.4 bodies always carry (docs/provider.md §5).
_POS_RECEIPT_ALWAYS: tuple[tuple[str, str, type | tuple[type, ...]], ...] = (
    ("counterparty", "CounterParty", dict),
    ("totalamountac", "totalAmountAC", (int, Decimal)),
    ("miscellaneousdata", "miscellaneousData", dict),
)


class InvalidDocument(Exception):
    """The payload failed validation; `errors` are (field path, problem) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{key}: {value}" for key, value in errors))
        self.errors = errors


@dataclass(frozen=True)
class CardPayment:
    path: str
    pos_input: str
    signature: str


@dataclass(frozen=True)
class CheckedDocument:
    uid: str
    issuer_vat: str
    series: str
    number: str
    invoice_type: str
    date_issued: str
    internal_id: str
    is_delayed_code: int
    card_payments: list[CardPayment] = field(default_factory=list)
    correlated: tuple[int, ...] = ()
    # The document's gross total as sent (listed back by getdocuments).
    total: Decimal | None = None


def loads_folded(data: bytes) -> Any:
    """`agent.json_codec.loads` with every object key lower-cased, in the parser's one pass.

    Folding while parsing saves walking the whole document a second time. Raises ValueError
    (JSONDecodeError, UnicodeDecodeError) for a body that is not JSON.
    """
    text = data.decode(json.detect_encoding(data), "surrogatepass")
    return _FOLDING_DECODER.decode(text)


def _fold_keys(obj: dict[str, Any]) -> dict[str, Any]:
    return {key.lower(): value for key, value in obj.items()}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


_FOLDING_DECODER = json.JSONDecoder(
    object_hook=_fold_keys, parse_float=Decimal, parse_constant=_refuse_constant
)


def check_invoice(doc: Any) -> CheckedDocument:
    """`/Invoice/json` (keys folded): identity, lines, summaries and payments of an
    EliseCoreDocument."""
    errors = _Errors()
    if not isinstance(doc, dict):
        raise InvalidDocument([("$", "the body must be a JSON object")])
    distribution = doc.get("distributiondetails")
    internal_id = distribution.get("internaldocumentid") if isinstance(distribution, dict) else None
    lines = _check_lines(doc.get("details"), "Details", errors, required=True)
    gross = _check_summaries(doc.get("summaries"), lines, errors)
    payment_details = doc.get("paymentdetails")
    methods = payment_details.get("paymentmethods") if isinstance(payment_details, dict) else None
    cards = _check_payments(methods, "PaymentDetails.PaymentMethods", gross, errors, coded=True)
    counterparty = doc.get("counterparty")
    if (
        str(doc.get("invoicetypecode", "")).startswith("11.")
        and isinstance(counterparty, dict)
        and counterparty.get("vat") not in (None, "")
    ):
        errors.add(
            "CounterParty.Vat",
            "a retail document (11.x) has no counterpart in myDATA: leave Vat empty",
        )
    checked = _identity(doc, internal_id, "DistributionDetails.InternalDocumentId", cards, errors)
    return replace(checked, total=gross)


def check_receipt(doc: Any) -> CheckedDocument:
    """`/Receipt` (keys folded): identity, `totalAmount`, and card lines that add up to it."""
    errors = _Errors()
    if not isinstance(doc, dict):
        raise InvalidDocument([("$", "the body must be a JSON object")])
    total = errors.money(doc.get("totalamount"), "totalAmount")
    if "details" in doc:
        lines = _check_lines(doc.get("details"), "details", errors, required=False)
        if total is not None and lines is not None and lines.gross != total:
            errors.add("totalAmount", f"{total} is not the sum of the lines ({lines.gross})")
    cards = _check_payments(doc.get("cardlines"), "cardlines", total, errors, coded=False)
    for key, name, kind in _POS_RECEIPT_ALWAYS:
        if not isinstance(doc.get(key), kind) or isinstance(doc.get(key), bool):
            errors.add(name, "is required (every POS receipt carries it, empty where empty)")
    checked = _identity(doc, doc.get("internaldocumentid"), "internalDocumentId", cards, errors)
    return replace(checked, total=total)


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, key: str, problem: str) -> None:
        self.items.append((key, problem))

    def text(self, value: Any, key: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
            self.add(key, "is required")
            return None
        return str(value)

    def money(self, value: Any, key: str) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            self.add(key, "must be a number")
            return None
        amount = Decimal(value)
        if amount < 0 or amount != amount.quantize(Decimal("0.01")):
            self.add(key, f"{value} must be a non-negative amount with at most 2 decimals")
            return None
        return amount

    def code(self, value: Any, key: str, allowed: Iterable[int]) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
            self.add(key, f"{value!r} is not a valid code")
            return None
        return value


@dataclass(frozen=True)
class _Totals:
    net: Decimal
    vat: Decimal
    gross: Decimal
    allowances: Decimal = Decimal(0)


def _check_allowances(line: dict[str, Any], path: str, errors: _Errors) -> Decimal:
    """A line's `AllowancesTotal` is the sum of its allowances' `Amount` (EliseCoreDocument:
    summaries equal the sums of the line fields); returns it (0 when the line has none)."""
    stated = line.get("allowancestotal")
    if stated is None:
        return Decimal(0)
    total = errors.money(stated, f"{path}.AllowancesTotal")
    items = line.get("allowancescharges") or []
    summed = Decimal(0)
    for item_path, item in _objects(items, f"{path}.AllowancesCharges", errors):
        amount = errors.money(item.get("amount"), f"{item_path}.Amount")
        if item.get("type") == 0 and amount is not None:
            summed += amount
    if total is not None and total != summed:
        errors.add(
            f"{path}.AllowancesTotal", f"{total} is not the sum of its allowances ({summed})"
        )
    return summed


def _check_lines(lines: Any, name: str, errors: _Errors, *, required: bool) -> _Totals | None:
    """Check every line; return the sums over non-informative lines, None when a line is bad."""
    if not isinstance(lines, list) or (required and not lines):
        errors.add(name, "at least one line is required")
        return None
    totals = _Totals(Decimal(0), Decimal(0), Decimal(0))
    before = len(errors.items)
    for path, line in _objects(lines, name, errors):
        net = errors.money(line.get("nettotal"), f"{path}.NetTotal")
        vat = errors.money(line.get("vattotal"), f"{path}.VATTotal")
        gross = errors.money(line.get("total"), f"{path}.Total")
        category = errors.code(line.get("vatcategorycode"), f"{path}.VatCategoryCode", range(1, 11))
        if category == 7 and line.get(_EXEMPTION_KEY) in (None, "", 0):
            errors.add(f"{path}.VatExemptionCategoryCode", "required for VAT category 7")
        if net is None or vat is None or gross is None:
            continue
        if net + vat != gross:
            errors.add(f"{path}.Total", f"{gross} is not NetTotal + VATTotal ({net + vat})")
        allowances = _check_allowances(line, path, errors)
        if line.get("isinformative") is not True:
            totals = _Totals(
                totals.net + net,
                totals.vat + vat,
                totals.gross + gross,
                totals.allowances + allowances,
            )
    return totals if len(errors.items) == before else None


def _objects(items: list[Any], name: str, errors: _Errors) -> Iterator[tuple[str, dict[str, Any]]]:
    """The items that are JSON objects, each with its path; any other item is an error."""
    for index, item in enumerate(items):
        path = f"{name}[{index}]"
        if isinstance(item, dict):
            yield path, item
        else:
            errors.add(path, "must be an object")


def _check_summaries(summaries: Any, lines: _Totals | None, errors: _Errors) -> Decimal | None:
    """Summaries must add up and equal the line sums; returns the gross for the payments check."""
    if not isinstance(summaries, dict):
        errors.add("Summaries", "is required")
        return None
    net = errors.money(summaries.get("totalnetamount"), "Summaries.TotalNetAmount")
    vat = errors.money(summaries.get("totalvatamount"), "Summaries.TotalVATAmount")
    gross = errors.money(summaries.get("totalgrossvalue"), "Summaries.TotalGrossValue")
    if net is not None and vat is not None and gross is not None and net + vat != gross:
        errors.add("Summaries.TotalGrossValue", f"{gross} is not net + VAT ({net + vat})")
    if lines is not None:
        for key, stated, summed in (
            ("TotalNetAmount", net, lines.net),
            ("TotalVATAmount", vat, lines.vat),
            ("TotalGrossValue", gross, lines.gross),
        ):
            if stated is not None and stated != summed:
                errors.add(f"Summaries.{key}", f"{stated} is not the sum of the lines ({summed})")
        allowances = summaries.get("totalallowances")
        if allowances is not None and allowances != lines.allowances:
            errors.add(
                "Summaries.TotalAllowances",
                f"{allowances} is not the sum of the lines' AllowancesTotal ({lines.allowances})",
            )
    return gross


def _check_payments(
    methods: Any, name: str, gross: Decimal | None, errors: _Errors, *, coded: bool
) -> list[CardPayment]:
    """Payments (tips excluded) must add up to the gross; card payments may carry a signature.

    Absent or empty payments are allowed: an 11.1 that only connects 8.4 MARKs carries none.
    """
    if methods in (None, []):
        return []
    if not isinstance(methods, list):
        errors.add(name, "must be a list")
        return []
    paid = Decimal(0)
    cards: list[CardPayment] = []
    for path, method in _objects(methods, name, errors):
        amount = errors.money(method.get("amount"), f"{path}.Amount")
        paid += amount or 0
        is_card = True
        if coded:
            code = errors.code(
                method.get("paymentmethodtypecode"), f"{path}.PaymentMethodTypeCode", range(1, 9)
            )
            is_card = code in (7, 8)  # a card, or IRIS through the provider: both signed
        signature = method.get("providerssignature")
        if is_card and signature not in (None, ""):
            pos_input = method.get("posinput")
            if not isinstance(pos_input, str) or not isinstance(signature, str) or not pos_input:
                errors.add(f"{path}.posInput", "required with providersSignature")
            else:
                cards.append(CardPayment(path, pos_input, signature))
    if gross is not None and paid != gross:
        errors.add(name, f"payments {paid} do not equal the gross {gross}")
    return cards


def _identity(
    doc: dict[str, Any],
    internal_id: Any,
    internal_id_key: str,
    cards: list[CardPayment],
    errors: _Errors,
) -> CheckedDocument:
    """The AADE UID inputs, checked and hashed; raises if anything collected so far failed."""
    series = errors.text(doc.get("series"), "Series")
    number = errors.text(doc.get("number"), "Number")
    invoice_type = errors.text(doc.get("invoicetypecode"), "InvoiceTypeCode")
    internal = errors.text(internal_id, internal_id_key)
    date_issued = doc.get("dateissued")
    issue_date = _issue_date(date_issued)
    if issue_date is None:
        errors.add("DateIssued", "is required as an ISO date-time")
    issuer = doc.get("issuer")
    vat = errors.text(issuer.get("vat") if isinstance(issuer, dict) else None, "Issuer.Vat")
    branch = issuer.get("branchcode", 0) if isinstance(issuer, dict) else 0
    if isinstance(branch, bool) or not isinstance(branch, int) or branch < 0:
        errors.add("Issuer.BranchCode", "must be a non-negative integer")
    delayed = errors.code(doc.get("isdelayedcode", 0), "IsDelayedCode", range(5))
    correlated = doc.get("correlatedinvoices") or []
    if not isinstance(correlated, list) or not all(
        isinstance(mark, int) and not isinstance(mark, bool) for mark in correlated
    ):
        errors.add("CorrelatedInvoices", "must be a list of MARKs")
    if errors.items:
        raise InvalidDocument(errors.items)
    assert series and number and invoice_type and internal and vat and issue_date
    assert delayed is not None
    return CheckedDocument(
        uid=document_uid(vat, issue_date, branch, invoice_type, series, number),
        issuer_vat=bare_vat(vat),
        series=series,
        number=number,
        invoice_type=invoice_type,
        date_issued=str(date_issued),
        internal_id=internal,
        is_delayed_code=delayed,
        card_payments=cards,
        correlated=tuple(correlated),
    )


def _issue_date(value: Any) -> date | None:
    """The calendar date of the issue, in Greek local time when the value carries an offset."""
    if not isinstance(value, str):
        return None
    try:
        issued = datetime.fromisoformat(value)
    except ValueError:
        return None
    if issued.tzinfo is not None:
        issued = issued.astimezone(ATHENS)
    return issued.date()
