"""One register's services in this process, wired as the daemon wires them (`Services`): a real
SQLite file in the test's directory and the sandbox provider as a real HTTP server on loopback
(`tests/conftest.py`). What the core use cases' tests run against, without a daemon."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

import offline_store as store
from agent.config import AgentConfig
from agent.core.runtime import Runtime
from agent.core.services import Services
from agent.elise.client import EliseClient
from agent.fiscal.receipt_model import ReceiptRequest
from agent.sandbox.server import SandboxServer
from agent.secrets import ApiKey
from tests.conftest import SANDBOX_VAT
from tests.fiscal.fixtures import shop_config

LINE = {"description": "Καφές", "quantity": "2", "unit_price": "2.50", "vat_category": 2}


def register_config(tmp_path: Path, sandbox: SandboxServer, **sections: Any) -> AgentConfig:
    """The shop of `tests/fiscal/fixtures.py` on the sandbox, its state in `tmp_path`;
    `sections` replace whole config sections (`sync={"concurrency": 1}`)."""
    base = shop_config().model_dump(mode="json")
    return AgentConfig.model_validate(
        {
            **base,
            "state_dir": str(tmp_path),
            "issuer": {**base["issuer"], "vat": SANDBOX_VAT},
            "provider": {**base["provider"], "base_url": sandbox.base_url, "total_timeout_s": 3},
            **sections,
        }
    )


@asynccontextmanager
async def running(config: AgentConfig, key: ApiKey) -> AsyncIterator[Services]:
    """The agent's services on one event loop (the client's connections belong to it); a
    second `running` on the same config is the register after a restart."""
    conn = store.open_database(config.database_path)
    client = EliseClient(config.provider, issuer_vat=config.issuer.vat, api_key=key)
    try:
        yield Services(Runtime(config=config, api_key=key, conn=conn, client=client))
    finally:
        await client.aclose()
        conn.close()


def cash_sale(request_id: str, **fields: Any) -> ReceiptRequest:
    """A 5.00 coffee paid in cash (`fields` add to or replace the request's)."""
    body = {
        "request_id": request_id,
        "lines": [LINE],
        "payments": [{"method": 3, "amount": "5.00"}],
    }
    return ReceiptRequest.model_validate({**body, **fields})


def set_faults(admin: httpx.Client, mode: str) -> None:
    admin.post("/_sandbox/faults", json={"mode": mode}).raise_for_status()
