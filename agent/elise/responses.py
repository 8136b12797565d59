"""From an HTTP answer to an outcome, defensively (docs/provider.md §6).

The provider's response schema is not published, so keys are matched case-insensitively
(`mark`/`Mark`/`MARK`, `uid`/`UID`/`uniqueId`, `url`/`qrUrl`), error text is gathered from
`message` → `myDataErrors[]` → `errorMessage` → the raw body, and a 2xx body that cannot be read
is treated as no answer (`Unreachable`): a resend then yields a duplicate carrying the MARK.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from agent.clock import ATHENS
from agent.elise.outcomes import (
    AadeDown,
    Accepted,
    DocumentPage,
    Duplicate,
    Failure,
    IrisInitiated,
    IrisInitiateOutcome,
    IrisState,
    IrisStatus,
    IrisStatusOutcome,
    ListedDocument,
    ListedOrder,
    ListOutcome,
    OrderListOutcome,
    OrderPage,
    PaymentUpdated,
    Rejected,
    SendOutcome,
    SignatureValidation,
    Signed,
    SignOutcome,
    Unauthorized,
    Unreachable,
    UpdateOutcome,
    ValidateOutcome,
)
from agent.elise.transport import ProviderAnswer
from agent.json_codec import loads

RAW_LIMIT = 500
_DUPLICATE_HINTS = ("already been transmitted", "duplicate", "already exists")
# A 2xx `success: false` whose text says the provider itself failed is an outage, not a verdict
# on the document: the same bytes go again later instead of waiting for a person. Narrow on
# purpose: a refusal worded "correct the VAT and try again" must still reach a person, not be
# re-sent until its deadline passes.
_SERVER_FAULT_HINTS = (
    "internal server error",
    "try later",
    "try again later",
    "temporarily unavailable",
    "service unavailable",
)
# myDATA's MARK is an xs:long: anything above cannot be a MARK (nor stored in SQLite's INTEGER).
MAX_MARK = 2**63 - 1


def send_outcome(status: int, content: bytes, portal_url: str) -> SendOutcome:
    body = json_object(content)
    if status == 409:
        return Duplicate(_mark(body), _text(body, content), body)
    if status in (200, 201):
        if body.get("success") is False:
            return _unsuccessful(status, body, content)
        mark = _mark(body)
        if mark is None:
            return Unreachable(f"HTTP {status} without a usable MARK: {_raw(content)}")
        return Accepted(
            mark=mark,
            uid=_string(body, "uid", "uniqueid"),
            authentication_code=_string(body, "authenticationcode"),
            qr_url=_qr_url(body, portal_url),
            raw=body,
        )
    return failure(status, content)


def sign_outcome(status: int, content: bytes) -> SignOutcome:
    if status != 200:
        return failure(status, content)
    body = json_object(content)
    for holder in (body, _object_at(body, "data"), _object_at(body, "result")):
        text, signature = _string(holder, "input"), _string(holder, "signature")
        if text and signature:
            return Signed(text, signature, body)
    return Unreachable(f"signpos answered without input/signature: {_raw(content)}")


def update_outcome(status: int, content: bytes) -> UpdateOutcome:
    body = json_object(content)
    if status == 409:
        return Duplicate(_mark(body), _text(body, content), body)
    if status not in (200, 201):
        return failure(status, content)
    if body.get("success") is False:
        return _unsuccessful(status, body, content)
    payment_mark = _string(body, "message")
    if not payment_mark:
        return Unreachable(f"updatePayment answered without a payment MARK: {_raw(content)}")
    return PaymentUpdated(payment_mark, body)


def validate_outcome(status: int, content: bytes) -> ValidateOutcome:
    if status != 200:
        outcome = failure(status, content)
        return (
            Unreachable(f"HTTP 408: {outcome.message}")
            if isinstance(outcome, AadeDown)
            else outcome
        )
    try:
        parsed = loads(content)
    except ValueError:
        parsed = None
    if isinstance(parsed, bool):
        return SignatureValidation(parsed, {"valid": parsed})
    body = fold_keys(parsed) if isinstance(parsed, dict) else {}
    for key in ("valid", "isvalid", "success"):
        if isinstance(body.get(key), bool):
            return SignatureValidation(body[key], body)
    return Unreachable(f"validate answered without a verdict: {_raw(content)}")


def document_page(response: ProviderAnswer, *, page: int) -> ListOutcome:
    """A page of `getdocuments`: a JSON array, and `NextPage` while there is a next page (a
    value that is missing, unreadable or not after this page ends the list)."""
    if response.status_code != 200:
        return failure(response.status_code, response.content)
    try:
        parsed = loads(response.content)
    except ValueError:
        parsed = None
    if not isinstance(parsed, list):
        return Unreachable(f"getdocuments answered without a list: {_raw(response.content)}")
    listed = [_listed(fold_keys(item)) for item in parsed if isinstance(item, dict)]
    following = (response.headers.get("nextpage") or "").strip()
    next_page = int(following) if following.isdigit() and int(following) > page else None
    return DocumentPage(listed, next_page)


def _listed(item: dict[str, Any]) -> ListedDocument:
    return ListedDocument(
        uid=_string(item, "uid", "uniqueid"),
        mark=_mark(item),
        internal_id=_string(item, "internaldocumentid"),
        type_code=_string(item, "invoicetypecode"),
        total=_total(item),
    )


def order_page(response: ProviderAnswer, *, page: int) -> OrderListOutcome:
    """A page of the provider's open order slips: a JSON array and `NextPage`, as
    `getdocuments` pages (docs/provider.md §15)."""
    listed = document_page(response, page=page)
    if not isinstance(listed, DocumentPage):
        return listed
    items = [fold_keys(item) for item in loads(response.content) if isinstance(item, dict)]
    return OrderPage([_listed_order(item) for item in items], listed.next_page)


def _listed_order(item: dict[str, Any]) -> ListedOrder:
    issued = _string(item, "dateissued")
    try:
        at = datetime.fromisoformat(issued) if issued else None
    except ValueError:
        at = None
    return ListedOrder(
        mark=_mark(item),
        uid=_string(item, "uid", "uniqueid"),
        internal_id=_string(item, "internaldocumentid"),
        table=_string(item, "tableid"),
        issued_at=at.replace(tzinfo=ATHENS) if at is not None and at.tzinfo is None else at,
        total=_total(item),
    )


def _total(item: dict[str, Any]) -> Decimal | None:
    total = item.get("totalgrossvalue", item.get("totalamount"))
    if isinstance(total, int) and not isinstance(total, bool):
        total = Decimal(total)
    return total if isinstance(total, Decimal) else None


def failure(status: int, content: bytes) -> Failure:
    """The non-success statuses shared by every call: 401, 408 AADE down, 5xx/429 unreachable."""
    body = json_object(content)
    if status == 401:
        return Unauthorized(_text(body, content))
    if status == 408:
        return AadeDown(_text(body, content))
    if status >= 500 or status == 429:
        return Unreachable(f"HTTP {status}: {_text(body, content)}")
    if 400 <= status < 500:
        return Rejected(status, messages(body, content))
    return Unreachable(f"unexpected HTTP {status}: {_raw(content)}")


def messages(body: dict[str, Any], content: bytes) -> list[str]:
    """Every error text (`message`, `myDataErrors[]`, `errorMessage`, in order), else the raw body.

    That is the order the provider's public QA suite reads them in (docs/provider.md §6).
    """
    found: list[str] = []
    message = _string(body, "message")
    if message:
        found.append(message)
    errors = body.get("mydataerrors")
    if isinstance(errors, list):
        for error in errors:
            if isinstance(error, dict):
                error = fold_keys(error)
                found.append(f"{error.get('key', '')}: {error.get('value', '')}".strip(": "))
            elif error:
                found.append(str(error))
    error_message = _string(body, "errormessage")
    if error_message:
        found.append(error_message)
    return found or [_raw(content)]


def _unsuccessful(
    status: int, body: dict[str, Any], content: bytes
) -> Duplicate | Rejected | Unreachable:
    """A 2xx with `success: false`: a duplicate when the text says so, an outage when it says
    the provider failed, else a rejection of the document."""
    found = messages(body, content)
    text = " ".join(found).lower()
    if any(hint in text for hint in _DUPLICATE_HINTS):
        return Duplicate(_mark(body), "; ".join(found), body)
    if any(hint in text for hint in _SERVER_FAULT_HINTS):
        return Unreachable(f"HTTP {status} success:false, a provider fault: {'; '.join(found)}")
    return Rejected(status, found)


def _text(body: dict[str, Any], content: bytes) -> str:
    return "; ".join(messages(body, content))


def json_object(content: bytes) -> dict[str, Any]:
    """The body as a dict with lower-cased keys; {} when it is not a JSON object."""
    try:
        parsed = loads(content)
    except ValueError:
        return {}
    return fold_keys(parsed) if isinstance(parsed, dict) else {}


def _object_at(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    return fold_keys(value) if isinstance(value, dict) else {}


def fold_keys(body: dict[str, Any]) -> dict[str, Any]:
    """Keys lower-cased: the provider's casing varies (`mark`, `Mark`, `MARK`)."""
    return {str(key).lower(): value for key, value in body.items()}


def _string(body: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def _mark(body: dict[str, Any]) -> int | None:
    """A MARK in myDATA's range, else None (an answer with another is not a usable MARK)."""
    value = body.get("mark")
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_MARK:
        return value
    return None


def _qr_url(body: dict[str, Any], portal_url: str) -> str | None:
    url = _string(body, "url", "qrurl")
    if url:
        return url
    signature = _string(body, "signature")
    return f"{portal_url.rstrip('/')}/v/{signature}" if signature else None


def _raw(content: bytes) -> str:
    text = content.decode("utf-8", errors="replace").strip()
    return text[:RAW_LIMIT] + ("…" if len(text) > RAW_LIMIT else "") if text else "(empty body)"


_IRIS_STATES: dict[str, IrisState] = {
    "pending": "Pending",
    "completed": "Completed",
    "expired": "Expired",
    "failed": "Failed",
}


def iris_initiated_outcome(status: int, content: bytes) -> IrisInitiateOutcome:
    """InitiatePayment: every id, the QR and the signature, or the answer is unusable."""
    if status not in (200, 201):
        return failure(status, content)
    body = json_object(content)
    holder = _object_at(body, "data") or body
    fields = {
        "qr": _string(holder, "qrcode", "qr", "qrtext"),
        "end_to_end_id": _string(holder, "endtoenddiasid"),
        "authorisation_request_id": _string(holder, "authorisationrequestid"),
        "merchant_id": _string(holder, "merchantid"),
        "signed_input": _string(holder, "signeddatainput"),
        "signature": _string(holder, "signature"),
    }
    missing = [name for name, value in fields.items() if not value]
    if missing:
        return Unreachable(
            f"InitiatePayment answered without {', '.join(missing)}: {_raw(content)}"
        )
    valid_until = None
    text = _string(holder, "validuntil", "expiresat")
    if text:
        try:
            valid_until = datetime.fromisoformat(text)
        except ValueError:
            valid_until = None
    return IrisInitiated(
        qr=fields["qr"] or "",
        end_to_end_id=fields["end_to_end_id"] or "",
        authorisation_request_id=fields["authorisation_request_id"] or "",
        merchant_id=fields["merchant_id"] or "",
        signed_input=fields["signed_input"] or "",
        signature=fields["signature"] or "",
        valid_until=valid_until,
        raw=body,
    )


def iris_status_outcome(status: int, content: bytes) -> IrisStatusOutcome:
    if status != 200:
        return failure(status, content)
    body = json_object(content)
    holder = _object_at(body, "data") or body
    state = _IRIS_STATES.get((_string(holder, "status", "paymentstatus") or "").lower())
    if state is None:
        return Unreachable(f"GetPaymentStatus answered without a known status: {_raw(content)}")
    return IrisStatus(state, body)
