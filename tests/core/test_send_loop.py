"""The sync's send loop (`agent/core/sync.py:SendLoop`) on its own, in this process: the
register's services on a real SQLite file, the sandbox provider as a real HTTP server on
loopback. One slot (`sync.concurrency = 1`) so the order of the calls is the test's to read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

import offline_store as store
from agent.config import AgentConfig
from agent.core.services import Services
from agent.core.sync import SendLoop
from agent.core.sync_report import SyncReport
from agent.sandbox.server import SandboxServer
from agent.secrets import ApiKey
from tests.core.register import cash_sale, register_config, running, set_faults


@pytest.fixture
def config(tmp_path: Path, sandbox: SandboxServer) -> AgentConfig:
    return register_config(tmp_path, sandbox, sync={"concurrency": 1})


def _provider_uids(admin: httpx.Client) -> list[str]:
    return [d["uid"] for d in admin.get("/_sandbox/documents").json()["documents"]]


async def _offline_sales(services: Services, *request_ids: str) -> list[int]:
    """Receipts issued while the provider is down: held offline, in this order."""
    ids = []
    for request_id in request_ids:
        answer = (await services.issuing.issue_receipt(cash_sale(request_id))).body
        assert answer.state == "delayed", answer
        ids.append(answer.receipt_id)
    return ids


def test_every_page_of_the_backlog_is_sent_in_its_order_each_outcome_counted(
    config: AgentConfig, sandbox_api_key: ApiKey, sandbox_admin: httpx.Client
) -> None:
    async def scenario() -> tuple[list[int], SyncReport, list[store.StoredDocument]]:
        set_faults(sandbox_admin, "down")
        async with running(config, sandbox_api_key) as services:
            ids = await _offline_sales(services, "a", "b", "c")
        set_faults(sandbox_admin, "ok")
        async with running(config, sandbox_api_key) as services:  # a fresh breaker
            pages = [list(reversed(ids[1:])), [ids[0]], []]  # pages as the store might hand them
            report = await SendLoop(
                services.runtime, services.transmitter, lambda: pages.pop(0), once=False
            ).run()
            docs = [store.get_document(services.runtime.conn, i) for i in ids]
        return ids, report, [d for d in docs if d is not None]

    ids, report, docs = asyncio.run(scenario())
    assert (report.attempted, report.accepted, report.still_delayed, report.rejected) == (
        3,
        3,
        0,
        0,
    )
    assert not report.stopped_early and report.altered == []
    # One slot: the documents go in the order the pages list them, every page read.
    assert [d.receipt_id for d in report.documents] == [ids[2], ids[1], ids[0]]
    assert all(d.state == store.DocumentState.ACCEPTED and d.mark for d in docs)
    assert sorted(_provider_uids(sandbox_admin)) == sorted(d.uid for d in docs)


def test_a_run_stops_once_the_provider_is_out_of_reach_and_leaves_the_rest(
    config: AgentConfig, sandbox_api_key: ApiKey, sandbox_admin: httpx.Client
) -> None:
    async def scenario() -> tuple[SyncReport, list[int], list[int]]:
        set_faults(sandbox_admin, "down")
        async with running(config, sandbox_api_key) as services:
            ids = await _offline_sales(services, "a", "b", "c")
        async with running(config, sandbox_api_key) as services:
            conn = services.runtime.conn
            before = [store.get_document(conn, i).attempts for i in ids]  # type: ignore[union-attr]
            report = await SendLoop(
                services.runtime, services.transmitter, lambda: list(ids), once=True
            ).run()
            assert services.runtime.breaker.is_open
            after = [store.get_document(conn, i).attempts for i in ids]  # type: ignore[union-attr]
        return report, before, after

    report, before, after = asyncio.run(scenario())
    assert (report.attempted, report.still_delayed, report.accepted) == (1, 1, 0)
    assert report.stopped_early
    # The first document was tried once more; the two behind it were not touched.
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 0, 0]
    assert _provider_uids(sandbox_admin) == []


def test_a_return_waits_for_its_originals_mark_and_follows_it(
    config: AgentConfig, sandbox_api_key: ApiKey, sandbox_admin: httpx.Client
) -> None:
    async def scenario() -> tuple[SyncReport, store.StoredDocument, store.StoredDocument]:
        set_faults(sandbox_admin, "down")
        async with running(config, sandbox_api_key) as services:
            (sale_id,) = await _offline_sales(services, "sale")
            credit = cash_sale("credit", type="11.4", correlated_receipt_id=sale_id)
            credit_id = (await services.issuing.issue_receipt(credit)).body.receipt_id
        set_faults(sandbox_admin, "ok")
        async with running(config, sandbox_api_key) as services:
            # The return comes first: it is held until the sale has its MARK, then sent.
            report = await SendLoop(
                services.runtime, services.transmitter, lambda: [credit_id, sale_id], once=True
            ).run()
            conn = services.runtime.conn
            sale, returned = store.get_document(conn, sale_id), store.get_document(conn, credit_id)
        assert sale is not None and returned is not None
        return report, sale, returned

    report, sale, returned = asyncio.run(scenario())
    assert [d.receipt_id for d in report.documents] == [sale.id, returned.id]
    assert report.accepted == 2 and report.attempted == 2
    documents = sandbox_admin.get("/_sandbox/documents").json()["documents"]
    (at_provider,) = [d for d in documents if d["uid"] == returned.uid]
    assert at_provider["correlated"] == [sale.mark]


def test_a_document_whose_payload_no_longer_matches_its_journal_is_not_sent(
    config: AgentConfig, sandbox_api_key: ApiKey, sandbox_admin: httpx.Client
) -> None:
    async def scenario() -> tuple[SyncReport, list[int]]:
        set_faults(sandbox_admin, "down")
        async with running(config, sandbox_api_key) as services:
            ids = await _offline_sales(services, "kept", "altered")
            conn = services.runtime.conn
            kept = store.get_document(conn, ids[0])
            assert kept is not None and kept.payload is not None
            # A hand edit: the second receipt's stored bytes replaced by the first one's, packed
            # as they were (the trigger that forbids it dropped, as a person with sqlite3 could).
            with store.transaction(conn):
                conn.execute("DROP TRIGGER documents_payload_frozen")
                conn.execute(
                    "UPDATE documents SET payload = (SELECT payload FROM documents WHERE id = ?), "
                    "packed = (SELECT packed FROM documents WHERE id = ?) WHERE id = ?",
                    (ids[0], ids[0], ids[1]),
                )
        set_faults(sandbox_admin, "ok")
        async with running(config, sandbox_api_key) as services:
            report = await SendLoop(
                services.runtime, services.transmitter, lambda: list(ids), once=True
            ).run()
        return report, ids

    report, ids = asyncio.run(scenario())
    assert report.altered == [ids[1]]
    assert (report.attempted, report.accepted) == (1, 1)
    assert len(_provider_uids(sandbox_admin)) == 1
