"""The produced JSON has the shapes of the provider's published samples (docs/provider.md §5)."""

from datetime import datetime
from decimal import Decimal

import pytest

from agent.clock import ATHENS
from agent.fiscal.document_builder import (
    identity_uid,
    internal_document_id,
    pos_payload,
    price_lines,
    receipt_payload,
)
from agent.fiscal.provider_payloads import (
    DocumentIdentity,
    PaymentEntry,
    payload_totals,
    pos_card_entries,
    set_delayed_code,
)
from agent.fiscal.receipt_model import PosReceiptRequest, ReceiptRequest
from agent.fiscal.uid import document_uid
from agent.json_codec import dumps, loads
from tests.fiscal.fixtures import shop_config
from tests.fiscal.qa_shapes import key_paths, qa_body, shape_differences

ISSUED = datetime(2026, 3, 29, 3, 30, 5, tzinfo=ATHENS)  # the morning summer time starts


def _receipt(**extra):
    body = {
        "request_id": "r1",
        "lines": [
            {
                "description": "Ελληνικός καφές",
                "quantity": 2,
                "unit_price": "2.50",
                "vat_category": 2,
            },
            {
                "description": "Βιβλίο",
                "quantity": 1,
                "unit_price": "10.00",
                "vat_category": 7,
                "exemption_cause": 14,
            },
            {
                "description": "Τοστ",
                "quantity": "1.5",
                "unit_price": "3.20",
                "vat_category": 1,
                "kind": "services",
            },
        ],
        "payments": [{"method": 3, "amount": "19.80"}],
    }
    body.update(extra)
    return ReceiptRequest.model_validate(body)


def _invoice(request: ReceiptRequest, payments=None):
    config = shop_config()
    priced = price_lines(request.lines, prices_include_vat=True)
    identity = DocumentIdentity(
        request.type, "ΑΛΠ", 7, ISSUED, internal_document_id(request.type, "ΑΛΠ", 7)
    )
    entries = payments or [PaymentEntry(method=p.method, amount=p.amount) for p in request.payments]
    return config, identity, receipt_payload(config, identity, request, priced, entries)


def test_invoice_payload_matches_the_elise_core_document_sample():
    _, _, payload = _invoice(_receipt())
    assert next(iter(payload)) == "IsDelayedCode"
    for key in (
        "IAPRSignPolicy",
        "CurrencyCode",
        "InvoiceType",
        "InvoiceTypeCode",
        "DocumentTypeCode",
        "Series",
        "Number",
        "DateIssued",
        "Issuer",
        "DistributionDetails",
        "PaymentDetails",
        "AdditionalDetails",
        "Details",
        "Summaries",
        "VatAnalysis",
        "multipleConnectedMarks",
    ):
        assert key in payload, key
    assert payload["InvoiceTypeCode"] == "11.1"
    assert payload["DateIssued"] == "2026-03-29T03:30:05"
    assert payload["Number"] == "7"
    assert payload["Issuer"]["Vat"] == "EL094019245"
    assert payload["Issuer"]["BranchCode"] == 0
    assert payload["DistributionDetails"]["InternalDocumentId"] == "11.1_ΑΛΠ_7"
    assert payload["AdditionalDetails"]["TransmissionMethod"] == "A"
    detail = payload["Details"][0]
    for key in (
        "LineNo",
        "Descriptions",
        "MeasurementUnitCode",
        "Quantity",
        "UnitPrice",
        "NetTotal",
        "VatCategory",
        "VatCategoryCode",
        "VATTotal",
        "Total",
        "IsInformative",
        "IsHidden",
        "RecordTypeCode",
        "IncomeClassification",
    ):
        assert key in detail, key
    assert detail["IncomeClassification"] == {
        "ClassificationTypeCode": "E3_561_003",
        "ClassificationCategoryCode": "category1_1",
    }
    assert payload["Details"][1]["VatExemptionCategoryCode"] == 14
    assert (
        payload["Details"][2]["IncomeClassification"]["ClassificationCategoryCode"] == "category1_3"
    )


def test_invoice_totals_add_up_and_payments_equal_gross():
    _, _, payload = _invoice(_receipt())
    details = payload["Details"]
    summaries = payload["Summaries"]
    assert summaries["TotalNetAmount"] == sum(d["NetTotal"] for d in details)
    assert summaries["TotalVATAmount"] == sum(d["VATTotal"] for d in details)
    assert summaries["TotalGrossValue"] == Decimal("19.80")
    assert sum(v["UnderlyingValue"] for v in payload["VatAnalysis"]) == summaries["TotalNetAmount"]
    assert (
        sum(p["Amount"] for p in payload["PaymentDetails"]["PaymentMethods"])
        == summaries["TotalGrossValue"]
    )


def test_card_payment_carries_the_signature_fields():
    request = _receipt(
        payments=[
            {
                "method": 7,
                "amount": "19.80",
                "tip": "1.00",
                "terminal_id": "16000198",
                "transaction_id": "tx-1",
                "signature_id": 3,
            }
        ]
    )
    entries = [
        PaymentEntry(
            method=7,
            amount=Decimal("19.80"),
            tip=Decimal("1.00"),
            terminal_id="16000198",
            transaction_id="tx-1",
            pos_input="UID;;20260329033005;1980;1612;368;1980;16000198",
            provider_signature="MEUCIQ",
        )
    ]
    _, _, payload = _invoice(request, entries)
    method = payload["PaymentDetails"]["PaymentMethods"][0]
    assert method["PaymentMethodTypeCode"] == 7
    assert method["transactionId"] == "tx-1"
    assert method["providersSignature"] == "MEUCIQ"
    assert method["posInput"].startswith("UID;")
    assert method["terminalId"] == "16000198"
    assert method["tipAmount"] == Decimal("1.00")


@pytest.mark.parametrize(
    ("delivery", "method"),
    [
        ({"email": True}, "E"),
        ({"mobile": True}, "M"),
        ({"email": True, "mobile": True}, "C"),
        ({}, "A"),
    ],
)
def test_transmission_method_travels_in_the_payload(delivery, method):
    request = _receipt(
        customer={"emails": ["a@b.gr"], "mobile_numbers": ["+306912345678"]}, delivery=delivery
    )
    _, _, payload = _invoice(request)
    details = payload["AdditionalDetails"]
    assert details["TransmissionMethod"] == method
    assert details["AccountingDepartmentEmails"] == (["a@b.gr"] if "email" in delivery else [])
    assert ("CustomerCellNumbers" in details) == ("mobile" in delivery)


def test_credit_note_carries_the_original_mark():
    request = _receipt(type="11.4", correlated_marks=[400001234567890])
    _, _, payload = _invoice(request)
    assert payload["InvoiceTypeCode"] == "11.4"
    assert payload["CorrelatedInvoices"] == [400001234567890]


def test_pos_receipt_matches_the_receipt_sample():
    config = shop_config()
    request = PosReceiptRequest.model_validate(
        {
            "request_id": "p1",
            "type": "8.4",
            "payments": [
                {"method": 7, "amount": "12.40", "terminal_id": "16000198", "transaction_id": "t9"}
            ],
            "connected_marks": [1],
        }
    )
    identity = DocumentIdentity("8.4", "ΑΕΠ", 3, ISSUED, "8.4_ΑΕΠ_3")
    entries = [
        PaymentEntry(method=7, amount=Decimal("12.40"), terminal_id="16000198", transaction_id="t9")
    ]
    payload = pos_payload(config, identity, request, entries)
    assert next(iter(payload)) == "isDelayedCode"
    assert payload["invoiceTypeCode"] == "8.4"
    assert payload["invoiceType"] == "POS Receipt"
    assert payload["totalAmount"] == Decimal("12.40")
    assert payload["internalDocumentId"] == "8.4_ΑΕΠ_3"
    assert payload["cardlines"][0]["amount"] == Decimal("12.40")
    assert payload["cardlines"][0]["terminalId"] == "16000198"
    assert payload["multipleConnectedMarks"] == [1]


# Issuer details the QA invents for its test company; ours come from [issuer] in the config.
QA_ISSUER_EXTRAS = (
    "issuer.generalcommercialregistrynumber",
    "issuer.contactperson",
    "issuer.faxes",
    "issuer.branch",
)


def _pos(type_code: str, **extra):
    request = PosReceiptRequest.model_validate(
        {
            "request_id": "p1",
            "type": type_code,
            "payments": [
                {"method": 7, "amount": "12.40", "terminal_id": "16000198", "transaction_id": "t9"}
            ],
            **extra,
        }
    )
    identity = DocumentIdentity(type_code, "ΑΕΠ", 3, ISSUED, f"{type_code}_ΑΕΠ_3")
    entries = [
        PaymentEntry(
            method=7,
            amount=Decimal("12.40"),
            terminal_id="16000198",
            transaction_id="t9",
            pos_input="UID;;20260329033005;1240;0;1240;1240;16000198",
            provider_signature="MEUCIQ",
        )
    ]
    return pos_payload(shop_config(), identity, request, entries)


@pytest.mark.parametrize("type_code", ["8.4", "8.5"])
def test_pos_receipt_has_every_key_the_qa_8_4_body_sends(type_code):
    """Both QA 8.4 bodies always carry CounterParty, totalAmountAC and miscellaneousData; ours
    does too, empty where there is nothing to say."""
    payload = loads(dumps(_pos(type_code)))  # as the provider reads the frozen bytes
    assert shape_differences(qa_body("receipt_8_4.json"), payload, skip=QA_ISSUER_EXTRAS) == []
    assert payload["CounterParty"]["Vat"] == "" and payload["CounterParty"]["RegisteredName"] == ""
    assert payload["totalAmountAC"] == 0
    assert payload["miscellaneousData"] == {"comments1": ""}


def test_retail_counterparty_never_carries_a_vat_like_the_qa_11_1():
    """The QA 11.1 only ever sends `CounterParty.Vat: ""`: a customer named for delivery keeps
    their name and addresses, never a VAT."""
    request = _receipt(
        customer={"name": "Μαρία Κ.", "emails": ["m@k.gr"]}, delivery={"email": True}
    )
    _, _, payload = _invoice(request)
    qa = key_paths(qa_body("invoice_11_1.json"))
    ours = key_paths(loads(dumps(payload)))
    assert ours["counterparty.vat"] == qa["counterparty.vat"] == "string"
    assert payload["CounterParty"]["Vat"] == qa_body("invoice_11_1.json")["CounterParty"]["Vat"]
    assert payload["CounterParty"]["RegisteredName"] == "Μαρία Κ."
    assert payload["AdditionalDetails"]["AccountingDepartmentEmails"] == ["m@k.gr"]


@pytest.mark.parametrize("food_service", [True, False])
def test_a_counter_receipt_carries_no_special_category_even_in_food_service(food_service):
    """SpecialInvoiceCategory 12 ("Συναλλαγές εστίασης") is what the QA food-service 11.1 sends
    when it pays a table; a counter or takeaway receipt sends 0 like the plain QA 11.1, in a
    café too (the table's receipt is built by agent.core.tables)."""
    config = shop_config(terminal={"food_service": food_service})
    request = _receipt()
    priced = price_lines(request.lines, prices_include_vat=True)
    identity = DocumentIdentity("11.1", "ΑΛΠ", 7, ISSUED, "11.1_ΑΛΠ_7")
    entries = [PaymentEntry(method=3, amount=Decimal("19.80"))]
    payload = loads(dumps(receipt_payload(config, identity, request, priced, entries)))
    assert (
        payload["SpecialInvoiceCategory"]
        == qa_body("invoice_11_1.json")["SpecialInvoiceCategory"]
        == 0
    )
    assert qa_body("fnb_11_1_excerpt.json")["SpecialInvoiceCategory"] == 12
    assert key_paths(payload)["specialinvoicecategory"] == "number"


def test_sales_receipt_connected_to_an_8_4_carries_its_card_payment_like_qa_tc02():
    """QA TC 02 step 4: the 11.1 connected to the 8.4 sends the card entry (code 7, amount,
    terminal, transaction) with an empty signature and input."""
    pos = loads(dumps(_pos("8.4")))
    entries = pos_card_entries(pos, "Απόδειξη Είσπραξης POS ΑΕΠ 3, ΜΑΡΚ 1")
    request = _receipt(
        lines=[{"description": "Τοστ", "quantity": 1, "unit_price": "12.40", "vat_category": 1}],
        payments=[],
        connected_marks=[1],
    )
    _, _, payload = _invoice(request, entries)
    [card] = loads(dumps(payload))["PaymentDetails"]["PaymentMethods"]
    assert shape_differences(qa_body("tc02_step4_payment.json"), card) == []
    assert (card["Amount"], card["transactionId"], card["terminalId"]) == (
        Decimal("12.40"),
        "t9",
        "16000198",
    )
    assert (card["providersSignature"], card["posInput"]) == ("", "")


def test_set_delayed_code_changes_only_that_digit():
    _, _, payload = _invoice(_receipt())
    frozen = dumps(payload)
    delayed = set_delayed_code(frozen, 2)
    assert delayed != frozen
    assert delayed.replace(b'"IsDelayedCode":2', b'"IsDelayedCode":0', 1) == frozen
    assert loads(delayed)["IsDelayedCode"] == 2
    with pytest.raises(ValueError):
        set_delayed_code(b'{"Series":"A"}', 1)


def test_uid_of_the_identity_uses_the_greek_date_and_series():
    config, identity, _ = _invoice(_receipt())
    assert identity_uid(config, identity) == document_uid(
        "094019245", ISSUED.date(), 0, "11.1", "ΑΛΠ", 7
    )


def test_a_whole_pos_amount_reads_back_as_decimal() -> None:
    """An 8.4 of 12 (sent without decimals) went offline with a 500: its frozen payload reads
    back `totalAmount` as an int, which the offline QR cannot format (found by pos-agent
    powercut)."""
    totals = payload_totals(loads(dumps({"totalAmount": Decimal("12")})))
    assert (totals.gross, totals.net, totals.vat) == (Decimal("12"), Decimal("12"), Decimal("0.00"))
    assert all(isinstance(amount, Decimal) for amount in (totals.gross, totals.net, totals.vat))
