"""The offline QR of a delayed document, built from its frozen payload (the same values the
provider will receive later), so the customer's QR and the late submission always agree."""

from __future__ import annotations

import offline_store as store
from agent.core.runtime import Runtime
from agent.fiscal.frozen_payloads import FrozenCounterParty, FrozenTotals
from agent.fiscal.offline_qr import OfflineQrFields, offline_qr_url, qr_amount
from agent.fiscal.uid import prefixed_vat

LEGENDS = {
    1: "Απώλεια Διασύνδεσης Οντότητας - Παρόχου",
    2: "Απώλεια Διασύνδεσης Παρόχου – ΑΑΔΕ",
}


def offline_fields(rt: Runtime, doc: store.StoredDocument) -> OfflineQrFields:
    assert doc.payload is not None
    frozen = FrozenTotals.of_payload(doc.payload)
    counterparty = frozen.counterparty or FrozenCounterParty()
    totals = frozen.totals()
    return OfflineQrFields(
        issuer_tin=prefixed_vat(rt.config.issuer.vat),
        customer_tin=prefixed_vat(counterparty.vat) if counterparty.vat else "",
        customer_name=counterparty.name,
        invoice_type=doc.type_code,
        series=doc.series,
        number=str(doc.number),
        date_issued=doc.issued_at.strftime("%Y%m%d%H%M%S"),
        total_amount=qr_amount(totals.gross),
        total_net_amount=qr_amount(totals.net),
        total_vat_amount=qr_amount(totals.vat),
        internal_id=doc.internal_id,
    )


def offline_qr_for(rt: Runtime, doc: store.StoredDocument) -> str:
    """The TransmissionFailure QR URL of a document that goes out delayed."""
    return offline_qr_url(rt.config.provider.portal_url, offline_fields(rt, doc), rt.api_key)
