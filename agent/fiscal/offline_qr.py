"""The provider's offline QR URL: Elise's `{portal}/TransmissionFailure` (docs/provider.md §8).

The signature is SHA-1 over the document identity followed by the API key. The key is an input to
the hash only: it never appears in the URL, and nothing here logs or formats it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote, urlencode

from agent.secrets import ApiKey


@dataclass(frozen=True)
class OfflineQrFields:
    """The query fields, already formatted exactly as they must appear in the URL and the hash."""

    issuer_tin: str
    customer_tin: str
    customer_name: str
    invoice_type: str
    series: str
    number: str
    date_issued: str  # yyyyMMddHHmmss, Greek local time
    total_amount: str
    total_net_amount: str
    total_vat_amount: str
    internal_id: str


def qr_amount(value: Decimal) -> str:
    """An amount as the provider's documentation writes it: `124` when whole, else two decimals
    (`100.50`). The same text goes into the URL and the hashed string (docs/provider.md §8)."""
    if value == value.to_integral_value():
        return f"{value:.0f}"
    return f"{value:.2f}"


def offline_signature(fields: OfflineQrFields, api_key: ApiKey) -> str:
    """Lower-case hex SHA-1 of `{issuer}-{customer}-{series}-{number}-{date}-{total}-{id}{key}`."""
    source = (
        f"{fields.issuer_tin}-{fields.customer_tin}-{fields.series}-{fields.number}-"
        f"{fields.date_issued}-{fields.total_amount}-{fields.internal_id}"
    )
    digest = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False)
    digest.update(api_key.reveal().encode("utf-8"))
    return digest.hexdigest()


def offline_qr_url(portal_url: str, fields: OfflineQrFields, api_key: ApiKey) -> str:
    """The full TransmissionFailure URL with camelCase parameters and the signature last."""
    query = {
        "issuerTin": fields.issuer_tin,
        "customerTin": fields.customer_tin,
        "customerName": fields.customer_name,
        "invoiceType": fields.invoice_type,
        "series": fields.series,
        "number": fields.number,
        "dateIssued": fields.date_issued,
        "totalAmount": fields.total_amount,
        "totalNetAmount": fields.total_net_amount,
        "totalVatAmount": fields.total_vat_amount,
        "internalId": fields.internal_id,
        "signature": offline_signature(fields, api_key),
    }
    return portal_url.rstrip("/") + "/TransmissionFailure?" + urlencode(query, quote_via=quote)
