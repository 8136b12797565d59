"""A request's digest by value: a field added later and left unset does not change it."""

from __future__ import annotations

from agent.core.request_identity import canonical
from agent.fiscal.receipt_model import PaymentSignRequest, ReceiptRequest

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
