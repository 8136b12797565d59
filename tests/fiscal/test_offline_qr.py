import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from agent.fiscal.offline_qr import OfflineQrFields, offline_qr_url, offline_signature
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
