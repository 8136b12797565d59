"""The till of `pos-agent powercut`: a seeded mix of sales over the real Unix socket, and the
ledger of every answer it was given.

A sale is cash, card (sign, then issue with the signature), a POS receipt 8.4, an order slip 8.6
at a table (closed later with the 11.1 that connects the table's orders), a drawer kick, or a
reprint («ΑΝΤΙΓΡΑΦΟ») of an earlier receipt. A call that meets a dead register (the power went
off) is sent again, same request_id and same body, once the register is back: what a till does,
and what makes "told and then lost" testable. Every 200/201 the till reads goes into the ledger
(`Told`): the audit checks after each cut that the store still holds exactly that.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from agent.json_codec import dumps
from agent.tools.local_stack import JSON_HEADERS

KINDS = ("cash", "card", "pos", "order", "close", "kick", "reprint")
WEIGHTS = (44, 18, 5, 16, 7, 5, 5)
MAX_ATTEMPTS = 60
RETRYABLE_503 = ("storage_unavailable", "storage_busy")


@dataclass
class Told:
    """One answer a till read: what the store must hold from then on."""

    request_id: str
    kind: str  # receipt | reservation | kick
    answer: dict[str, Any]
    payload_sha256: str | None = None  # learned at the first audit after it was told


@dataclass
class Ledger:
    told: dict[str, Told] = field(default_factory=dict)
    receipts: list[int] = field(default_factory=list)  # receipt ids a reprint may name
    open_tables: dict[str, list[str]] = field(default_factory=dict)  # table → order request_ids
    refused: list[str] = field(default_factory=list)

    def tell(self, request_id: str, kind: str, answer: dict[str, Any]) -> None:
        if request_id not in self.told:
            self.told[request_id] = Told(request_id, kind, answer)
            if kind == "receipt" and answer.get("type") in ("11.1", "8.4"):
                self.receipts.append(int(answer["receipt_id"]))


class RegisterDown(Exception):
    """The register did not answer: the power went off (or the daemon died)."""


class Till:
    """Sends one call at a time on the harness's one client. `outage()` is the harness's: it returns once the register is
    back after a cut (restarted and audited); `rolled_back()` is the technician's answer to a
    `database_rolled_back` refusal."""

    def __init__(
        self,
        client: Callable[[], httpx.Client],
        seed: int,
        outage: Callable[[], None],
        rolled_back: Callable[[], None],
    ) -> None:
        self.client = client
        self.seed = seed
        self.outage = outage
        self.rolled_back = rolled_back
        self.ledger = Ledger()
        self.statuses: dict[int, int] = {}
        self.problems: list[str] = []
        self.sales = 0

    # -- one call ------------------------------------------------------------------------------

    def call(self, path: str, body: dict[str, Any] | None, method: str = "POST") -> httpx.Response:
        content = dumps(body) if body is not None else None
        for _ in range(MAX_ATTEMPTS):
            try:
                response = self.client().request(
                    method, path, content=content, headers=JSON_HEADERS
                )
            except httpx.TransportError:
                self.outage()
                continue
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            if response.status_code != 503:
                return response
            code = response.json().get("error", {}).get("code")
            if code == "database_rolled_back":
                self.rolled_back()
                continue
            if code in RETRYABLE_503 or response.json().get("mode") == "autonomous":
                return response
            self.problems.append(f"{path}: {response.status_code} {response.text[:200]}")
            return response
        raise RegisterDown(f"{path}: no answer after {MAX_ATTEMPTS} attempts")

    # -- the sales -----------------------------------------------------------------------------

    def sell(self, index: int) -> str:
        """The index-th sale of this seed; returns its kind."""
        rng = random.Random(f"{self.seed}:sale:{index}")
        kind = rng.choices(KINDS, weights=WEIGHTS)[0]
        rid = f"p{self.seed}-{index}"
        if kind == "reprint" and not self.ledger.receipts:
            kind = "cash"
        if kind == "close" and not self.ledger.open_tables:
            kind = "order"
        match kind:
            case "cash":
                self._receipt(rid, _lines(rng), card=False, printed=rng.random() < 0.5)
            case "card":
                self._receipt(rid, _lines(rng), card=True, printed=rng.random() < 0.5)
            case "pos":
                self._pos(rid, rng)
            case "order":
                self._order(rid, rng)
            case "close":
                self._close(rid, rng)
            case "kick":
                self._tell(rid, "kick", self.call("/v1/drawer/open", {"request_id": rid}))
            case "reprint":
                receipt_id = rng.choice(self.ledger.receipts)
                response = self.call(f"/v1/receipts/{receipt_id}/print", {"request_id": rid})
                if response.status_code not in (200, 201, 404):
                    self._refuse(rid, response)
        self.sales += 1
        return kind

    def _receipt(self, rid: str, lines: list[dict[str, Any]], *, card: bool, printed: bool) -> None:
        total = sum((Decimal(str(x["unit_price"])) * x["quantity"] for x in lines), Decimal(0))
        payment: dict[str, Any] = {"method": 3, "amount": total}
        body = {"request_id": rid, "lines": lines, "delivery": {"print": printed}}
        for signing in range(1, 4):
            if card:
                signed = self._sign(f"{rid}-sign-{signing}", total, lines)
                if signed is None:
                    return
                payment = signed
            response = self.call("/v1/receipts", {**body, "payments": [payment]})
            code = _error_code(response)
            if card and code in ("unknown_signature", "reservation_voided") and signing < 3:
                continue
            self._tell(rid, "receipt", response)
            return

    def _sign(
        self, rid: str, total: Decimal, lines: list[dict[str, Any]] | None, doc: str = "11.1"
    ) -> dict[str, Any] | None:
        sign: dict[str, Any] = {
            "request_id": rid,
            "terminal_id": "T1",
            "amount": total,
            "document_type": doc,
        }
        if lines is not None:
            sign["lines"] = lines
        response = self.call("/v1/payments/sign", sign)
        payment: dict[str, Any] = {
            "method": 7,
            "amount": total,
            "terminal_id": "T1",
            "transaction_id": f"tx-{rid}",
        }
        if response.status_code == 503:  # the terminal goes autonomous: no signature
            return payment
        if response.status_code != 201:
            self._refuse(rid, response)
            return None
        self._tell(rid, "reservation", response)
        payment["signature_id"] = response.json()["signature_id"]
        return payment

    def _pos(self, rid: str, rng: random.Random) -> None:
        total = Decimal(rng.randint(100, 5000)) / 100
        payment = self._sign(f"{rid}-sign", total, None, "8.4")
        if payment is None:
            return
        body = {"request_id": rid, "type": "8.4", "payments": [payment]}
        self._tell(rid, "receipt", self.call("/v1/pos-receipts", body))

    def _order(self, rid: str, rng: random.Random) -> None:
        table = f"T{rng.randint(1, 6)}"
        body = {"request_id": rid, "table": table, "waiter": "Μαρία", "lines": _lines(rng)}
        response = self.call("/v1/orders", body)
        self._tell(rid, "receipt", response)
        if response.status_code in (200, 201):
            self.ledger.open_tables.setdefault(table, []).append(rid)

    def _close(self, rid: str, rng: random.Random) -> None:
        """Close a table with cash; a table whose orders are still offline waits (the close is
        tried again by a later sale)."""
        table = rng.choice(sorted(self.ledger.open_tables))
        shown = self.call(f"/v1/tables/{table}", None, method="GET")
        if shown.status_code == 404:
            self.ledger.open_tables.pop(table, None)
            return
        total = Decimal(str(shown.json()["closing_total"]))
        payments = [{"method": 3, "amount": total}] if total else []
        body = {"request_id": f"{rid}-{table}", "payments": payments}
        response = self.call(f"/v1/tables/{table}/close", body)
        if _error_code(response) == "orders_not_synced":
            return
        self._tell(f"{rid}-{table}", "receipt", response)
        if response.status_code in (200, 201):
            self.ledger.open_tables.pop(table, None)

    # -- answers -------------------------------------------------------------------------------

    def _tell(self, rid: str, kind: str, response: httpx.Response) -> None:
        if response.status_code in (200, 201):
            self.ledger.tell(rid, kind, response.json())
        else:
            self._refuse(rid, response)

    def _refuse(self, rid: str, response: httpx.Response) -> None:
        self.ledger.refused.append(rid)
        self.problems.append(f"{rid}: {response.status_code} {response.text[:200]}")


def _error_code(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        code = response.json().get("error", {}).get("code")
    except ValueError:
        return None
    return code if isinstance(code, str) else None


def _lines(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "description": f"Είδος {index + 1}",
            "quantity": rng.randint(1, 3),
            "unit_price": Decimal(rng.randint(50, 2500)) / 100,
            "vat_category": rng.choice((1, 2, 3)),
        }
        for index in range(rng.randint(1, 4))
    ]
