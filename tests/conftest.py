"""Shared fixtures: a real sandbox provider on 127.0.0.1 and valid documents to send to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.json_codec import dumps
from agent.sandbox.server import SandboxServer
from agent.secrets import ApiKey

SANDBOX_VAT = "EL154697391"
SANDBOX_KEY = "5f0c1c7e-3b0a-4c51-9d7e-sandbox-test-key-7731"


@pytest.fixture
def sandbox_api_key() -> ApiKey:
    return ApiKey(SANDBOX_KEY)


@pytest.fixture
def sandbox_factory(
    tmp_path: Path, sandbox_api_key: ApiKey
) -> Iterator[Callable[..., SandboxServer]]:
    """Start sandboxes sharing one state directory (a second one is a restart of the first)."""
    started: list[SandboxServer] = []

    def start(**overrides: Any) -> SandboxServer:
        options: dict[str, Any] = {"api_key": sandbox_api_key, "issuer_vat": SANDBOX_VAT}
        options.update(overrides)
        server = SandboxServer(tmp_path / "sandbox", **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., SandboxServer]) -> SandboxServer:
    return sandbox_factory()


@pytest.fixture
def sandbox_admin(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """A plain client for the `/_sandbox/*` admin endpoints (faults, clock, documents)."""
    with httpx.Client(base_url=sandbox.base_url, timeout=5) as client:
        yield client


def invoice_document(
    number: int | str = 1,
    *,
    series: str = "ΑΛΠ",
    date_issued: str = "2026-03-02T10:15:00",
    vat: str = SANDBOX_VAT,
    lines: list[tuple[str, str, str, int]] | None = None,
    payments: list[dict[str, Any]] | None = None,
    delayed_code: int = 0,
) -> dict[str, Any]:
    """A valid 11.1 EliseCoreDocument; lines are (net, vat, gross, VAT category)."""
    lines = lines or [("8.06", "1.94", "10.00", 1), ("4.03", "0.97", "5.00", 1)]
    net = sum((Decimal(line[0]) for line in lines), Decimal(0))
    vat_total = sum((Decimal(line[1]) for line in lines), Decimal(0))
    gross = sum((Decimal(line[2]) for line in lines), Decimal(0))
    if payments is None:
        payments = [{"PaymentMethodType": "Cash", "PaymentMethodTypeCode": 3, "Amount": gross}]
    return {
        "IsDelayedCode": delayed_code,
        "CurrencyCode": "EUR",
        "InvoiceTypeCode": "11.1",
        "DocumentTypeCode": "INVOICE",
        "Series": series,
        "Number": str(number),
        "DateIssued": date_issued,
        "Issuer": {"Vat": vat, "BranchCode": 0},
        "DistributionDetails": {"InternalDocumentId": f"11.1_{series}_{number}"},
        "PaymentDetails": {"PaymentMethods": payments},
        "AdditionalDetails": {"TransmissionMethod": "A"},
        "Details": [
            {
                "LineNo": index + 1,
                "NetTotal": Decimal(line_net),
                "VATTotal": Decimal(line_vat),
                "Total": Decimal(line_gross),
                "VatCategoryCode": category,
            }
            for index, (line_net, line_vat, line_gross, category) in enumerate(lines)
        ],
        "Summaries": {
            "TotalNetAmount": net,
            "TotalVATAmount": vat_total,
            "TotalGrossValue": gross,
        },
    }


@pytest.fixture
def make_invoice() -> Callable[..., bytes]:
    """Frozen payload bytes of a valid 11.1 (see `invoice_document` for the options)."""

    def make(*args: Any, **kwargs: Any) -> bytes:
        return dumps(invoice_document(*args, **kwargs))

    return make


@pytest.fixture
def make_invoice_document() -> Callable[..., dict[str, Any]]:
    """The same valid 11.1 as a dict, for tests that break one field before sending."""
    return invoice_document
