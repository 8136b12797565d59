"""An example request body for each operation that takes one, as the OpenAPI document shows
them (and docs/api.md with it). A test validates each against its request model, so an example
an integrator copies is always accepted."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

_COFFEE = {
    "description": "Ελληνικός καφές",
    "quantity": 2,
    "unit_price": Decimal("2.50"),
    "vat_category": 2,
}
_BOOK = {
    "description": "Βιβλίο",
    "quantity": 1,
    "unit_price": Decimal("10.00"),
    "vat_category": 7,
    "exemption_cause": 14,
}
_FREDDO = {
    "description": "Φρέντο εσπρέσο",
    "quantity": 2,
    "unit_price": Decimal("3.50"),
    "vat_category": 2,
}

REQUEST_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/receipts"): {
        "request_id": "till1-000042",
        "lines": [_COFFEE, _BOOK],
        "payments": [{"method": 3, "amount": Decimal("15.00")}],
    },
    ("POST", "/v1/pos-receipts"): {
        "request_id": "till1-000043",
        "type": "8.4",
        "payments": [
            {
                "method": 7,
                "amount": Decimal("5.00"),
                "terminal_id": "16000198",
                "transaction_id": "000123456789",
                "signature_id": 7,
            }
        ],
    },
    ("POST", "/v1/payments/sign"): {
        "request_id": "s-42",
        "terminal_id": "16000198",
        "amount": Decimal("5.00"),
        "document_type": "11.1",
        "lines": [_COFFEE],
    },
    ("POST", "/v1/payments/iris"): {
        "request_id": "iris-42",
        "amount": Decimal("5.00"),
        "lines": [_COFFEE],
    },
    ("POST", "/v1/receipts/{receipt_id}/payments"): {
        "request_id": "p-42",
        "signature_id": 7,
        "transaction_id": "000123456789",
    },
    ("POST", "/v1/receipts/{receipt_id}/print"): {"request_id": "copy-42"},
    ("POST", "/v1/orders"): {
        "request_id": "t5-0001",
        "table": "5",
        "waiter": "Μαρία",
        "lines": [_FREDDO],
    },
    ("POST", "/v1/orders/{order_id}/cancel"): {"request_id": "t5-0002"},
    ("POST", "/v1/provider-orders/{mark}/cancel"): {
        "request_id": "cancel-400001234567",
        "waiter": "Γιώργος",
    },
    ("POST", "/v1/tables/{table}/close"): {
        "request_id": "t5-close",
        "payments": [{"method": 3, "amount": Decimal("7.00")}],
    },
    ("POST", "/v1/drawer/open"): {"request_id": "drawer-0001"},
    ("POST", "/v1/closings"): {"request_id": "z-2026-12-07"},
    ("POST", "/v1/reconcile"): {"date": "2026-12-07"},
}
