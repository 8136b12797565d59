"""The local API's error body: 4xx for the caller's mistakes, 5xx only for ours.

`{"error": {"code": ..., "message": ..., "fields": [{"path": "lines[2].vat_category", ...}]}}`
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agent.core import errors as core
from agent.fiscal.discounts import DiscountTooLarge
from agent.fiscal.errors import DomainError, FieldProblem, PaymentsMismatch
from agent.fiscal.orders import ReturnExceedsOrders
from agent.fiscal.returns import OriginalNotReturnable, ReturnExceedsOriginal
from agent.fiscal.table_bill import TablePartRefused

_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([a-z_][a-z_.\[\]0-9]*): (.+)$", re.DOTALL)


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str
    fields: list[FieldProblem] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = [{"path": f.path, "message": f.message} for f in self.fields]
        error.update(self.extra)
        return {"error": error}


# Every domain error, and the status and code the local API answers it with. The codes are the
# API's contract with the POS (docs/integrator.md "Errors"); `DomainError` itself is never raised.
ERROR_CODES: dict[type[DomainError], tuple[int, str]] = {
    PaymentsMismatch: (422, "payments_mismatch"),
    core.RequestIdReused: (409, "request_id_reused"),
    core.ReceiptNotFound: (404, "receipt_not_found"),
    core.UnknownSignature: (422, "unknown_signature"),
    core.SignatureNotActive: (409, "signature_not_active"),
    core.SignatureExpired: (409, "signature_expired"),
    core.SignedAmountDiffers: (409, "signed_amount_differs"),
    core.SignaturesMixed: (422, "signatures_mixed"),
    core.ReservationUsed: (409, "reservation_used"),
    core.ReservationVoided: (409, "reservation_voided"),
    core.SignRequestSettled: (409, "sign_request_settled"),
    core.SignedTypeDiffers: (422, "signed_type_differs"),
    core.SignedTotalDiffers: (409, "signed_total_differs"),
    core.AmountExceedsTotal: (422, "amount_exceeds_total"),
    core.ConnectedReceiptUnknown: (422, "connected_receipt_unknown"),
    core.NotSameDay: (409, "not_same_day"),
    core.ReceiptNotSignable: (409, "receipt_not_signable"),
    core.ReceiptHasNoMark: (409, "receipt_has_no_mark"),
    core.ProviderRejected: (422, "provider_rejected"),
    core.ProviderSignatureUnusable: (502, "provider_signature_unusable"),
    core.ProviderSignatureMismatch: (502, "provider_signature_mismatch"),
    core.PaymentAlreadyRecorded: (409, "payment_already_recorded"),
    core.PaymentNotSent: (503, "provider_unreachable"),
    core.SignRetryLater: (503, "provider_busy"),
    core.PosReceiptNotUpdatable: (409, "pos_receipt_not_updatable"),
    core.StorageUnavailable: (503, "storage_unavailable"),
    core.StorageBusy: (503, "storage_busy"),
    core.DatabaseRolledBack: (503, "database_rolled_back"),
    core.NothingRolledBack: (409, "nothing_rolled_back"),
    core.PayloadAltered: (503, "payload_altered"),
    core.ReceiptUnreadable: (503, "receipt_unreadable"),
    core.OutcomeNotRecorded: (503, "storage_unavailable"),
    core.TableNotOpen: (404, "table_not_open"),
    core.OrderNotOpen: (409, "order_not_open"),
    core.ProviderOrderNotFound: (404, "provider_order_not_found"),
    core.OrdersNotSynced: (409, "orders_not_synced"),
    core.CancelLeavesReturns: (409, "cancel_leaves_returns"),
    core.DrawerNotConfigured: (409, "drawer_not_configured"),
    core.ClosingNotFound: (404, "closing_not_found"),
    core.PrinterDisabled: (409, "printer_disabled"),
    ReturnExceedsOrders: (422, "return_exceeds_orders"),
    DiscountTooLarge: (422, "discount_too_large"),
    TablePartRefused: (422, "table_part_refused"),
    ReturnExceedsOriginal: (422, "return_exceeds_original"),
    core.IrisUnavailable: (503, "iris_unavailable"),
    core.IrisPaymentNotFound: (404, "iris_payment_not_found"),
    core.IrisPaymentNotCompleted: (409, "iris_payment_not_completed"),
    OriginalNotReturnable: (422, "original_not_returnable"),
}


def from_domain_error(exc: DomainError) -> ApiError:
    status, code = ERROR_CODES[type(exc)]
    return ApiError(status, code, exc.message, exc.fields, dict(exc.detail))


def field_path(location: tuple[int | str, ...]) -> str:
    """`('lines', 2, 'vat_category')` → `lines[2].vat_category`."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def from_validation_error(exc: ValidationError) -> ApiError:
    """Name every field and rule; model-level rules carry their field as `name: message`."""
    problems: list[FieldProblem] = []
    for err in exc.errors(include_url=False):
        location = tuple(p for p in err["loc"] if not str(p).startswith("function-after"))
        path = field_path(location)
        message = str(err["msg"])
        prefixed = _FIELD_PREFIX.match(message)
        if prefixed and err["type"] == "value_error":
            inner, message = prefixed.group(1), prefixed.group(2)
            path = f"{path}.{inner}" if path else inner
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        problems.append(FieldProblem(path=path or "(body)", message=message))
    summary = "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
    return ApiError(422, "invalid_request", f"the request is invalid: {summary}", problems)
