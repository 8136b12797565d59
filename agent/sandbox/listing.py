"""`GET /invoice/getdocuments/{IssuerVatNumber}/{PageNumber}/?From=YYYYMMDD&To=YYYYMMDD`: the
issuer's documents of those days, a JSON array per page, and a `NextPage` header naming the next
page while there is one (the assumptions are in docs/provider.md §14). And
`GET /invoice/getopenorderdocuments/{IssuerVatNumber}/{PageNumber}/`: the issuer's order slips
(8.6) still open, any day, paged the same way (assumed, docs/provider.md §15).

Pages are numbered from 1 and hold `page_size` items in MARK order. The list faults
(`faults.py`) change what is listed, never what is stored: `list_drops` leaves the newest
document of the range out, `list_total` lists it with 1.00 more, `open_orders_drops` leaves the
newest open order slip out of the open orders.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from agent.fiscal.uid import bare_vat
from agent.json_codec import dumps
from agent.sandbox.asgi import Request, Response
from agent.sandbox.store import SandboxStore

PREFIX = "/invoice/getdocuments/"
OPEN_ORDERS_PREFIX = "/invoice/getopenorderdocuments/"
_PATH = re.compile(r"^/invoice/getdocuments/([^/]+)/(\d{1,6})/?$")
_OPEN_PATH = re.compile(r"^/invoice/getopenorderdocuments/([^/]+)/(\d{1,6})/?$")
_DAY = re.compile(r"^\d{8}$")


def _refused(status: int, message: str) -> Response:
    return Response(status, dumps({"success": False, "message": message}))


def _day(text: str | None) -> date | None:
    if text is None or _DAY.match(text) is None:
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def list_documents(
    request: Request, store: SandboxStore, *, issuer_vat: str, page_size: int, fault: str
) -> Response:
    """One page of the list (the caller has checked the API key)."""
    found = _PATH.match(request.path)
    if found is None:
        return _refused(404, "use /api/invoice/getdocuments/{IssuerVatNumber}/{PageNumber}/")
    vat, page = found.group(1), int(found.group(2))
    if bare_vat(vat) != bare_vat(issuer_vat):
        return _refused(401, "The IssuerVatNumber doesn't match the API key")
    first, last = _day(request.query("From")), _day(request.query("To"))
    if first is None or last is None or page < 1:
        return _refused(400, "From and To are required as YYYYMMDD, PageNumber from 1")
    rows = store.issued_between(issuer_vat, first.isoformat(), last.isoformat())
    listed = [_item(row) for row in rows]
    if listed and fault == "list_drops":
        listed.pop()
    elif listed and fault == "list_total":
        listed[-1]["TotalGrossValue"] = listed[-1]["TotalGrossValue"] + Decimal("1.00")
    return _page(listed, page, page_size)


def list_open_orders(
    request: Request, store: SandboxStore, *, issuer_vat: str, page_size: int, fault: str
) -> Response:
    """One page of the issuer's open order slips (the caller has checked the API key)."""
    found = _OPEN_PATH.match(request.path)
    if found is None:
        return _refused(
            404, "use /api/invoice/getopenorderdocuments/{IssuerVatNumber}/{PageNumber}/"
        )
    vat, page = found.group(1), int(found.group(2))
    if bare_vat(vat) != bare_vat(issuer_vat):
        return _refused(401, "The IssuerVatNumber doesn't match the API key")
    if page < 1:
        return _refused(400, "PageNumber starts from 1")
    listed = [_open_item(row) for row in store.orders.open_for(issuer_vat)]
    if listed and fault == "open_orders_drops":
        listed.pop()
    return _page(listed, page, page_size)


def _page(listed: list[dict[str, Any]], page: int, page_size: int) -> Response:
    start = (page - 1) * page_size
    headers: tuple[tuple[bytes, bytes], ...] = ()
    if start + page_size < len(listed):
        headers = ((b"nextpage", str(page + 1).encode()),)
    return Response(200, dumps(listed[start : start + page_size]), headers=headers)


def _open_item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "Mark": row["mark"],
        "Uid": row["uid"],
        "InternalDocumentId": row["internal_id"],
        "Series": row["series"],
        "Number": row["number"],
        "InvoiceTypeCode": "8.6",
        "TableId": row["table_id"],
        "DateIssued": row["date_issued"],
        "IsReturn": row["kind"] == "return",
        "TotalGrossValue": Decimal(row["gross"]),
    }


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "Uid": row["uid"],
        "Mark": row["mark"],
        "InternalDocumentId": row["internal_id"],
        "Series": row["series"],
        "Number": row["number"],
        "InvoiceTypeCode": row["invoice_type"],
        "DateIssued": row["date_issued"],
        "IsDelayedCode": row["is_delayed_code"],
        "TotalGrossValue": Decimal(row["total"]) if row["total"] is not None else Decimal("0"),
    }
