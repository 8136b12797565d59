"""The myDATA document UID (A.1035/2020 Appendix B2).

The provider and AADE compute the same value from the document identity, so the agent computes it
*before* sending: it is the key for duplicate detection and for matching card-payment signatures.
"""

from __future__ import annotations

import hashlib
from datetime import date


def uid_source(
    issuer_vat: str,
    issue_date: date,
    branch: int,
    invoice_type: str,
    series: str,
    number: int | str,
) -> str:
    """The preimage: `{ΑΦΜ}-{yyyy-MM-dd}-{branch}-{type}-{series}-{number}`, VAT without `EL`."""
    vat = bare_vat(issuer_vat)
    return f"{vat}-{issue_date.isoformat()}-{branch}-{invoice_type}-{series}-{number}"


def document_uid(
    issuer_vat: str,
    issue_date: date,
    branch: int,
    invoice_type: str,
    series: str,
    number: int | str,
) -> str:
    """Upper-case hex SHA-1 of the ISO-8859-7 encoded preimage (Greek series letters included)."""
    source = uid_source(issuer_vat, issue_date, branch, invoice_type, series, number)
    return hashlib.sha1(source.encode("iso-8859-7"), usedforsecurity=False).hexdigest().upper()


def bare_vat(vat: str) -> str:
    """ΑΦΜ without the `EL` country prefix, as myDATA wants it."""
    vat = vat.strip().upper()
    return vat[2:] if vat.startswith("EL") else vat


def prefixed_vat(vat: str) -> str:
    """ΑΦΜ with the `EL` prefix, as the Elise payloads and the offline QR want it."""
    return "EL" + bare_vat(vat)
