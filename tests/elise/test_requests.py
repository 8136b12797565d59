"""The signpos body has the shape of the provider's QA request (tests/fiscal/qa_payloads)."""

from datetime import datetime
from decimal import Decimal

import pytest

from agent.clock import ATHENS
from agent.elise.requests import PaymentReference, SignPosRequest
from agent.json_codec import loads
from tests.fiscal.qa_shapes import qa_body, shape_differences


@pytest.mark.parametrize("type_code", ["11.1", "11.4", "8.4", "8.5"])
def test_signpos_for_a_sale_or_a_refund_has_the_qa_request_shape(type_code):
    request = SignPosRequest(
        payment=PaymentReference(
            issuer_tin="EL154697391",
            issue_date=datetime(2026, 3, 2, 10, 15, tzinfo=ATHENS),
            branch_code=0,
            invoice_type_code=type_code,
            series="ΠΛΠ",
            identifier="3",
            payment_amount=Decimal("8.40"),
            total_net_amount=Decimal("7.43"),
            total_vat_amount=Decimal("0.97"),
            total_amount=Decimal("8.40"),
        ),
        mark=None,
        terminal_id="16000198",
    )
    body = loads(request.to_json())
    qa = qa_body("signpos.json")
    assert shape_differences(qa, body) == []
    assert set(body) == set(qa)
    assert (body["invoiceTypeCode"], body["issuerTin"]) == (type_code, qa["issuerTin"])
