"""A card sale's two calls as use cases, in this process: the provider's signature before the
terminal charges (`CardPaymentService.sign`), then the receipt that carries it
(`IssuingService.issue_receipt`). A real SQLite file, the sandbox provider as a real HTTP
server on loopback; no daemon, no socket."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

import offline_store as store
from agent.config import AgentConfig
from agent.core.answers import DocumentAnswer, SignatureAnswer
from agent.core.card_payments import Autonomous
from agent.core.errors import RequestIdReused
from agent.core.request_identity import Answer
from agent.core.services import Services
from agent.fiscal.receipt_model import PaymentSignRequest
from agent.sandbox.server import SandboxServer
from agent.secrets import ApiKey
from tests.core.register import LINE, cash_sale, register_config, running, set_faults

TERMINAL = "16000198"


@pytest.fixture
def config(tmp_path: Path, sandbox: SandboxServer) -> AgentConfig:
    return register_config(tmp_path, sandbox)


def _sign_request(request_id: str, amount: str = "5.00") -> PaymentSignRequest:
    return PaymentSignRequest.model_validate(
        {
            "request_id": request_id,
            "terminal_id": TERMINAL,
            "amount": amount,
            "document_type": "11.1",
            "lines": [LINE],
        }
    )


async def _signed(services: Services, request: PaymentSignRequest) -> Answer[SignatureAnswer]:
    outcome = await services.cards.sign(request)
    assert not isinstance(outcome, Autonomous), outcome
    return outcome


async def _issue_with(services: Services, signature: SignatureAnswer) -> Answer[DocumentAnswer]:
    card = {
        "method": 7,
        "amount": Decimal("5.00"),
        "terminal_id": TERMINAL,
        "transaction_id": "000123456789",
        "signature_id": signature.signature_id,
    }
    return await services.issuing.issue_receipt(cash_sale("card-sale", payments=[card]))


def test_a_signature_reserves_the_receipt_that_then_carries_it(
    config: AgentConfig, sandbox_api_key: ApiKey, sandbox_admin: httpx.Client
) -> None:
    async def scenario() -> None:
        async with running(config, sandbox_api_key) as services:
            conn = services.runtime.conn
            signed = await _signed(services, _sign_request("sign-1"))
            signature = signed.body
            assert signed.created
            # The provider signed our reservation: its UID, our terminal, the amounts in cents.
            assert signature.fields.uid == signature.uid
            assert signature.fields.terminal_id == TERMINAL
            assert 500 in signature.fields.amounts_cents
            reserved = store.get_document(conn, signature.receipt_id)
            assert reserved is not None and reserved.state == store.DocumentState.RESERVED

            # The same call again answers the first signature, remembered, not a second one.
            again = await _signed(services, _sign_request("sign-1"))
            assert again == signed
            with pytest.raises(RequestIdReused):
                await services.cards.sign(_sign_request("sign-1", amount="4.00"))

            issued = await _issue_with(services, signature)
            receipt = issued.body
            assert issued.created and receipt.receipt_id == signature.receipt_id
            assert (receipt.series, receipt.number) == (signature.series, signature.number)
            assert receipt.state == "accepted" and receipt.mark is not None
            replay = await _issue_with(services, signature)
            assert not replay.created and replay.body.receipt_id == receipt.receipt_id

        documents = sandbox_admin.get("/_sandbox/documents").json()["documents"]
        assert [d["uid"] for d in documents] == [signature.uid]

    asyncio.run(scenario())


def test_a_provider_out_of_reach_answers_autonomous_and_the_same_call_signs_later(
    config: AgentConfig, sandbox_api_key: ApiKey, sandbox_admin: httpx.Client
) -> None:
    async def scenario() -> None:
        async with running(config, sandbox_api_key) as services:
            set_faults(sandbox_admin, "down")
            first = await services.cards.sign(_sign_request("sign-2"))
            assert isinstance(first, Autonomous), first
            # Not remembered: nothing to replay, the reservation kept for the retry.
            assert store.find_request(services.runtime.conn, "sign-2") is None

            set_faults(sandbox_admin, "ok")
            assert await services.sync.probe()
            signed = await _signed(services, _sign_request("sign-2"))
            assert signed.created
            reserved = store.get_by_request_id(services.runtime.conn, "sign:sign-2")
            assert reserved is not None and reserved.id == signed.body.receipt_id

    asyncio.run(scenario())
