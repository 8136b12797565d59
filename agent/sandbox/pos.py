"""`/PosTransactions/signpos`: the request, and the input string the provider signs.

Input string, in the Cardlink/Mellon order that Elise's signpos example follows
(docs/provider.md §7.2): `UID;MARK;yyyyMMddHHmmss;net;vat;total;paid;TID`, amounts in cents,
MARK empty when null, the timestamp being the issue time in Greek local time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from agent.fiscal.uid import bare_vat, document_uid
from agent.sandbox.documents import ATHENS, InvalidDocument

DURATIONS = {"H_24": timedelta(hours=24), "H_2": timedelta(hours=2)}


@dataclass(frozen=True)
class SignPos:
    issuer_vat: str
    uid: str
    mark: int | None
    issued_at: datetime  # Greek local time
    net: Decimal
    vat: Decimal
    total: Decimal
    paid: Decimal
    terminal_id: str
    duration: str

    def input_string(self) -> str:
        mark = "" if self.mark is None else str(self.mark)
        stamp = self.issued_at.strftime("%Y%m%d%H%M%S")
        cents = ";".join(_cents(a) for a in (self.net, self.vat, self.total, self.paid))
        return f"{self.uid};{mark};{stamp};{cents};{self.terminal_id}"


def parse_signpos(body: Any, now: datetime) -> SignPos:
    """Validate a signpos body (keys folded); a date-only `issueDate` is signed with the current
    Greek time."""
    if not isinstance(body, dict):
        raise InvalidDocument([("$", "the body must be a JSON object")])
    errors: list[tuple[str, str]] = []

    def text(key: str, name: str) -> str:
        value = body.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
            errors.append((name, "is required"))
            return ""
        return str(value)

    def money(key: str, name: str) -> Decimal:
        value = body.get(key)
        if isinstance(value, bool) or not isinstance(value, int | Decimal) or value < 0:
            errors.append((name, "must be a non-negative number"))
            return Decimal(0)
        if Decimal(value) != Decimal(value).quantize(Decimal("0.01")):
            errors.append((name, "must have at most 2 decimals"))
        return Decimal(value)

    issuer = text("issuertin", "issuerTin")
    series = text("series", "series")
    identifier = text("identifier", "identifier")
    invoice_type = text("invoicetypecode", "invoiceTypeCode")
    terminal_id = text("terminalid", "terminalId")
    branch = body.get("branchcode")
    if isinstance(branch, bool) or not isinstance(branch, int) or branch < 0:
        errors.append(("branchCode", "must be a non-negative integer"))
        branch = 0
    mark = body.get("mark")
    if mark == 0:
        mark = None  # Elise's documented example sends 0 for "no MARK"
    if mark is not None and (isinstance(mark, bool) or not isinstance(mark, int)):
        errors.append(("mark", "must be an integer or null"))
        mark = None
    duration = body.get("signaturedurationtype", "H_24")
    if duration not in DURATIONS:
        errors.append(("signatureDurationType", "must be H_24 or H_2"))
    issued_at = _issued_at(body.get("issuedate"), now)
    if issued_at is None:
        errors.append(("issueDate", "is required as an ISO date or date-time"))
    net = money("totalnetamount", "totalNetAmount")
    vat = money("totalvatamount", "totalVatAmount")
    total = money("totalamount", "totalAmount")
    paid = money("paymentamount", "paymentAmount")
    if net + vat != total:
        errors.append(("totalAmount", f"{total} is not totalNetAmount + totalVatAmount"))
    if paid > total:
        errors.append(("paymentAmount", f"{paid} exceeds totalAmount {total}"))
    if errors:
        raise InvalidDocument(errors)
    assert issued_at is not None
    return SignPos(
        issuer_vat=bare_vat(issuer),
        uid=document_uid(issuer, issued_at.date(), branch, invoice_type, series, identifier),
        mark=mark,
        issued_at=issued_at,
        net=net,
        vat=vat,
        total=total,
        paid=paid,
        terminal_id=terminal_id,
        duration=str(duration),
    )


def input_mark(pos_input: str) -> int | None:
    """The MARK field (second) of a signed input string."""
    parts = pos_input.split(";")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def input_uid(pos_input: str) -> str:
    return pos_input.split(";", 1)[0]


def _issued_at(value: Any, now: datetime) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            local_now = now.astimezone(ATHENS)
            return datetime.combine(day, local_now.time().replace(microsecond=0), ATHENS)
        issued = datetime.fromisoformat(value)
    except ValueError:
        return None
    if issued.tzinfo is None:
        return issued.replace(tzinfo=ATHENS)
    return issued.astimezone(ATHENS)


def _cents(amount: Decimal) -> str:
    return str(int(amount * 100))
