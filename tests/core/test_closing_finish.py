"""A closing (Z) whose call failed after its commit, while its slip waited for the
reconciliation: the repeat of the request (a till's retry, or the API's own when the storage was
busy) finishes it, the reconciliation kept and the slip released, instead of answering the
closing while its slip stays held until the wait runs out, printed without the result. In this
process: the register's services on a real SQLite file, the sandbox provider as a real HTTP
server on loopback; the write refused by a trigger on the register's own connection."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

import offline_store as store
from agent.config import AgentConfig
from agent.core.closings import ClosingRequest
from agent.sandbox.server import SandboxServer
from agent.secrets import ApiKey
from tests.core.register import cash_sale, register_config, running

REFUSE_RESULT = """
CREATE TEMP TRIGGER refuse_result BEFORE UPDATE OF reconciliation ON closings
BEGIN SELECT RAISE(ABORT, 'the result could not be written'); END
"""


@pytest.fixture
def config(tmp_path: Path, sandbox: SandboxServer) -> AgentConfig:
    return register_config(tmp_path, sandbox)


def test_a_repeated_closing_finishes_the_reconciliation_its_first_call_lost(
    config: AgentConfig, sandbox_api_key: ApiKey
) -> None:
    async def scenario() -> None:
        async with running(config, sandbox_api_key) as services:
            conn = services.runtime.conn
            sale = (await services.issuing.issue_receipt(cash_sale("coffee"))).body
            assert sale.state == "accepted", sale
            conn.execute(REFUSE_RESULT)
            with pytest.raises(sqlite3.IntegrityError, match="could not be written"):
                await services.closings.close(ClosingRequest(request_id="z"))
            assert store.held_closing_prints(conn) == [1], "the Z is kept, its slip held"
            conn.execute("DROP TRIGGER temp.refuse_result")
            again = await services.closings.close(ClosingRequest(request_id="z"))
            assert not again.created
            result = again.body.reconciliation
            assert result is not None, "the reconciliation was not run again"
            assert result.error is None and result.matched == 1, result
            assert store.held_closing_prints(conn) == [], "the slip is still held"

    asyncio.run(scenario())
