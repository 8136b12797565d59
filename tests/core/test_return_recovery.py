"""A return whose original is still offline, cut off between its two transactions (frozen but
not yet held offline): the re-send on start holds it with its print job, and once the provider
is back it goes out after its original with the original's MARK. Real SQLite file, the sandbox
as a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

import offline_store as store
from agent.config import AgentConfig
from agent.core.issuing import Draft
from agent.core.request_identity import canonical
from agent.core.services import Services
from agent.fiscal.document_builder import price_lines, receipt_payload, series_for
from agent.fiscal.provider_payloads import DocumentIdentity, PaymentEntry
from agent.fiscal.receipt_model import ReceiptRequest
from agent.json_codec import dumps, loads
from agent.sandbox.server import SandboxServer
from agent.secrets import ApiKey
from tests.core.register import LINE, register_config, running


@pytest.fixture
def config(tmp_path: Path, sandbox: SandboxServer) -> AgentConfig:
    return register_config(tmp_path, sandbox)


def _frozen_not_held(services: Services, request: ReceiptRequest) -> store.StoredDocument:
    """What the first transaction of a return leaves when the process dies right after it:
    `pending`, its payload frozen with an empty correlation list, no print job."""
    rt = services.runtime
    priced = price_lines(request.lines, prices_include_vat=True)
    payments = [PaymentEntry(method=3, amount=priced.totals.gross)]
    draft = Draft(request.request_id, canonical(request), "11.4", priced.totals.gross)
    series = series_for(rt.config, "11.4")
    now = rt.clock()

    def build(identity: DocumentIdentity) -> bytes:
        return dumps(receipt_payload(rt.config, identity, request, priced, payments, []))

    with store.transaction(rt.conn):
        return store.insert_document(
            rt.conn,
            series,
            lambda number: draft.new_document(rt.config, series, number, now, build=build),
            now=now,
        )


def test_a_return_cut_off_before_it_was_held_is_held_on_start_then_sent_with_the_mark(
    config: AgentConfig, sandbox_api_key: ApiKey, sandbox_admin: httpx.Client
) -> None:
    asyncio.run(_scenario(config, sandbox_api_key, sandbox_admin))


async def _scenario(config: AgentConfig, key: ApiKey, sandbox_admin: httpx.Client) -> None:
    sandbox_admin.post("/_sandbox/faults", json={"mode": "down"}).raise_for_status()
    async with running(config, key) as services:
        sale = (
            await services.issuing.issue_receipt(
                ReceiptRequest.model_validate(
                    {
                        "request_id": "sale",
                        "lines": [LINE],
                        "payments": [{"method": 3, "amount": "5.00"}],
                    }
                )
            )
        ).body
        assert sale.state == "delayed"
        credit = ReceiptRequest.model_validate(
            {
                "request_id": "credit",
                "type": "11.4",
                "correlated_receipt_id": sale.receipt_id,
                "lines": [LINE],
                "payments": [{"method": 3, "amount": "5.00"}],
            }
        )
        cut = _frozen_not_held(services, credit)
        assert store.print_jobs_for(services.runtime.conn, cut.id) == []

    async with running(config, key) as services:  # the start after the crash, provider down
        conn = services.runtime.conn
        await services.sync.resend_unsent()
        held = store.get_document(conn, cut.id)
        assert held is not None and held.state == store.DocumentState.DELAYED
        assert held.delayed_code == 1 and held.offline_qr_url
        assert len(store.print_jobs_for(conn, cut.id)) == 1

        sandbox_admin.post("/_sandbox/faults", json={"mode": "ok"}).raise_for_status()
        await services.sync.probe()
        await services.sync.run(ignore_backoff=True)

        original = store.get_document(conn, sale.receipt_id)
        returned = store.get_document(conn, cut.id)
    assert original is not None and returned is not None
    assert original.mark is not None and returned.mark is not None
    documents = sandbox_admin.get("/_sandbox/documents").json()["documents"]
    (at_provider,) = [d for d in documents if d["uid"] == returned.uid]
    assert at_provider["correlated"] == [original.mark]
    assert loads(returned.payload or b"")["CorrelatedInvoices"] == []  # the frozen bytes kept
