import hashlib
import logging
from dataclasses import replace
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from agent.fiscal.offline_qr import OfflineQrFields, offline_qr_url, offline_signature, qr_amount
from agent.secrets import ApiKey

KEY = "0383223f-06ff-4e7c-bd36-29a1acdb41b0"
FIELDS = OfflineQrFields(
    issuer_tin="EL118058830",
    customer_tin="EL987654321",
    customer_name="John",
    invoice_type="1.2",
    series="ΤΔΑ",
    number="123",
    date_issued="20231010162042",
    total_amount="124",
    total_net_amount="100",
    total_vat_amount="24",
    internal_id="1.2_ΤΔΑ_123",
)


def test_reference_vector():
    assert offline_signature(FIELDS, ApiKey(KEY)) == "92fea653224fd17d9b92a209f2cc9aacd300130f"


def test_url_matches_the_documented_example():
    assert offline_qr_url("https://einvoice-demo-portal.s1ecos.gr/", FIELDS, ApiKey(KEY)) == (
        "https://einvoice-demo-portal.s1ecos.gr/TransmissionFailure?issuerTin=EL118058830"
        "&customerTin=EL987654321&customerName=John&invoiceType=1.2&series=%CE%A4%CE%94%CE%91"
        "&number=123&dateIssued=20231010162042&totalAmount=124&totalNetAmount=100"
        "&totalVatAmount=24&internalId=1.2_%CE%A4%CE%94%CE%91_123"
        "&signature=92fea653224fd17d9b92a209f2cc9aacd300130f"
    )


def test_signature_depends_on_the_key():
    assert offline_signature(FIELDS, ApiKey(KEY)) != offline_signature(FIELDS, ApiKey("other"))


def test_key_never_in_url_repr_or_logs(caplog):
    key = ApiKey(KEY)
    url = offline_qr_url("https://portal.example", FIELDS, key)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").info("key=%s %r %s", key, key, f"{key}")
    assert KEY not in url
    assert KEY not in caplog.text
    assert KEY not in repr(key) and KEY not in str(key)
    assert parse_qs(urlsplit(url).query)["series"] == ["ΤΔΑ"]


def test_key_cannot_be_pickled():
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(ApiKey(KEY))


@pytest.mark.parametrize(
    ("amount", "text"),
    [("124.00", "124"), ("124", "124"), ("0.00", "0"), ("100.50", "100.50"), ("3.2", "3.20")],
)
def test_amounts_are_written_like_the_documented_example(amount, text):
    assert qr_amount(Decimal(amount)) == text


def test_our_amounts_reproduce_the_reference_vector_and_the_url_matches_the_hash():
    """Stored amounts are `124.00`; written the documented way they give the documented hash,
    and the URL's totalAmount is the very text that was hashed."""
    fields = replace(
        FIELDS,
        total_amount=qr_amount(Decimal("124.00")),
        total_net_amount=qr_amount(Decimal("100.00")),
        total_vat_amount=qr_amount(Decimal("24.00")),
    )
    assert offline_signature(fields, ApiKey(KEY)) == "92fea653224fd17d9b92a209f2cc9aacd300130f"
    query = {
        k: v[0]
        for k, v in parse_qs(
            urlsplit(offline_qr_url("https://p", fields, ApiKey(KEY))).query
        ).items()
    }
    source = "-".join(
        query[k]
        for k in ("issuerTin", "customerTin", "series", "number", "dateIssued", "totalAmount")
    )
    hashed = hashlib.sha1(f"{source}-{query['internalId']}{KEY}".encode(), usedforsecurity=False)
    assert query["signature"] == hashed.hexdigest()
    assert query["totalAmount"] == "124"
