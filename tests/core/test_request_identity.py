"""A request's digest by value: a field added later and left unset does not change it."""

from __future__ import annotations

import pytest

from agent.core.request_identity import CanonicalRequest, canonical, canonical_call
from agent.fiscal.orders import (
    CancelOrderRequest,
    CancelProviderOrderRequest,
    CloseTableRequest,
    OrderRequest,
)
from agent.fiscal.receipt_model import (
    IrisPaymentRequest,
    PaymentSignRequest,
    PosReceiptRequest,
    ReceiptRequest,
)

LINE = {"description": "Καφές", "quantity": "2", "unit_price": "2.50", "vat_category": 2}
# Digests of these requests as the agent computed them before discounts existed: a till that
# retries one across the upgrade must get its first answer back, not `request_id_reused`.
RECEIPT_DIGEST = "bb58821140762cb87d148d219e1f5865874a20ceaf3e7fa39669197884617d73"
SIGN_DIGEST = "32e5dde3d9bce19dcdb4b443ae465ce982ce14fc3fa4c2b11c23ff64a908654b"


def test_requests_without_a_discount_hash_as_before_discounts_existed() -> None:
    receipt = ReceiptRequest.model_validate(
        {"request_id": "r1", "lines": [LINE], "payments": [{"method": 3, "amount": "5.00"}]}
    )
    sign = PaymentSignRequest.model_validate(
        {"request_id": "s1", "terminal_id": "T1", "amount": "5.00", "lines": [LINE]}
    )
    assert canonical(receipt).digest == RECEIPT_DIGEST
    assert canonical(sign).digest == SIGN_DIGEST


def test_a_discount_makes_another_request() -> None:
    body = {"request_id": "r1", "lines": [LINE], "payments": [{"method": 3, "amount": "4.50"}]}
    with_discount = ReceiptRequest.model_validate({**body, "discount": {"amount": "0.50"}})
    on_line = ReceiptRequest.model_validate(
        {**body, "lines": [{**LINE, "discount": {"amount": "0.50"}}]}
    )
    digests = {canonical(r).digest for r in (with_discount, on_line)}
    assert len(digests) == 2 and RECEIPT_DIGEST not in digests


# Digests (and, for a call, the stored text) of these requests as the agent computed them before
# the digest's form was folded into the encoder: the registers' stored digests must still match.
BOOK = {
    "description": "Βιβλίο",
    "quantity": "1.500",
    "unit_price": "10.00",
    "vat_category": 7,
    "exemption_cause": 14,
}
QUOTED = {**LINE, "description": 'Καφές "διπλός"'}
CARD = {"method": 7, "terminal_id": "T1", "transaction_id": "tx-9"}
PINNED_REQUESTS = {
    "receipt": (
        ReceiptRequest,
        {
            "request_id": "r-1",
            "lines": [QUOTED, BOOK],
            "payments": [{"method": 3, "amount": "20.00"}],
        },
        "201f67a4acf59dba51e1a229138aa90d48332ab2887fc8136c871b36438df652",
    ),
    "receipt_discounts": (
        ReceiptRequest,
        {
            "request_id": "r-2",
            "lines": [{**QUOTED, "discount": {"amount": "0.50"}}, BOOK],
            "discount": {"amount": "1.00"},
            "payments": [
                {"method": 3, "amount": "18.50"},
                {**CARD, "amount": "1.000", "tip": "0.50", "signature_id": 4},
            ],
        },
        "9b87f5513bc44201f05ee77d09ddb9a450ed6f2458a132516fc32b18c316bac6",
    ),
    "pos_receipt": (
        PosReceiptRequest,
        {
            "request_id": "p-1",
            "payments": [{**CARD, "amount": "12.00", "signature_id": 3, "transaction_id": "tx-3"}],
        },
        "c6dbdeb90af476c6f48439c73ef0b1c0635dd7004210ee6356344760f9d11143",
    ),
    "sign_table": (
        PaymentSignRequest,
        {
            "request_id": "s-1",
            "terminal_id": "T1",
            "amount": "12.50",
            "table": {"table": "T4", "amount": "12.50"},
        },
        "74df841aa799921a2ccdafb327b3bd64ba042dd62aa4aee11a51e2f373029aac",
    ),
    "iris": (
        IrisPaymentRequest,
        {"request_id": "i-1", "amount": "5.00", "lines": [QUOTED]},
        "a29a833f6d5487dbc494343568a71c2d93d5ae6abccb256358b3e1947e7efa3b",
    ),
    "order": (
        OrderRequest,
        {"request_id": "o-1", "table": "T4", "waiter": "Νίκος", "lines": [QUOTED]},
        "22f0670d814b37fd2fa6409b48160dbb8ed19f30bc6842e9554c6f42b20cd6c1",
    ),
}
PINNED_CALLS = {
    "close_table": (
        CloseTableRequest,
        {"request_id": "c-1", "amount": "12.50", "payments": [{"method": 3, "amount": "12.50"}]},
        {"table": "T4"},
        '{"table":"T4","request_id":"c-1","amount":"12.50","lines":null,"payments":[{"method":3,'
        '"amount":"12.50","tip":"0","terminal_id":null,"transaction_id":null,"signature_id":null,'
        '"iris_payment_id":null}],"customer":null,"delivery":{"print":null,"email":false,'
        '"mobile":false}}',
        "934ae2836aacfe23bb9d6dc3e97812d1dbdac201bac45f3bca175d3a713ef9bd",
    ),
    "cancel_order": (
        CancelOrderRequest,
        {"request_id": "c-2", "waiter": "Νίκος"},
        {"order_id": 7},
        '{"order_id":7,"request_id":"c-2","waiter":"Νίκος"}',
        "f5b6f5cf0ca4f49847a1fbcc7ffad4ab331a6be82fbb5237d5f8efd345f2bc2b",
    ),
    "cancel_provider_order": (
        CancelProviderOrderRequest,
        {"request_id": "c-3"},
        {"mark": 400001234567},
        '{"mark":400001234567,"request_id":"c-3","waiter":"pos-agent"}',
        "10210955e90b8ff89423d899373f4f06b6cf74d782d696a8c082db3ac068cbba",
    ),
}


@pytest.mark.parametrize("name", PINNED_REQUESTS)
def test_a_request_hashes_as_the_agent_hashed_it_before(name: str) -> None:
    model, body, digest = PINNED_REQUESTS[name]
    request = model.model_validate(body)
    stored = canonical(request)
    assert stored.digest == digest
    assert stored.json == request.model_dump_json()


@pytest.mark.parametrize("name", PINNED_CALLS)
def test_a_call_is_stored_and_hashed_as_before(name: str) -> None:
    model, body, context, text, digest = PINNED_CALLS[name]
    assert canonical_call(model.model_validate(body), **context) == CanonicalRequest(text, digest)


def test_amounts_count_by_value_and_the_url_counts_too() -> None:
    body = {"request_id": "c-1", "amount": "12.50", "payments": [{"method": 3, "amount": "12.5"}]}
    same = {**body, "amount": "12.5", "payments": [{"method": 3, "amount": "12.50"}]}
    first = canonical_call(CloseTableRequest.model_validate(body), table="T4")
    again = canonical_call(CloseTableRequest.model_validate(same), table="T4")
    other_table = canonical_call(CloseTableRequest.model_validate(body), table="T5")
    assert first.digest == again.digest != other_table.digest
