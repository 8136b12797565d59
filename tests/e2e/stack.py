"""Shared pieces of the end-to-end suite: one real sandbox + daemon per test module.

A test module binds the two fixtures made by `e2e_stack(...)`:

    e2e_stack_process, stack = e2e_stack(total_timeout_s=3.0)

`e2e_stack_process` (module scope) starts the sandbox and the daemon as real processes in a temp
dir; `stack` (function scope) hands the same stack to each test after resetting it: faults back to
"ok", a killed daemon restarted, the breaker closed. Nothing here sleeps to measure time; waiting
for an asynchronous effect (a sync finishing, a row appearing) polls with a deadline.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

import offline_store as store
from agent.core.answers import DocumentAnswer, Health
from agent.tools.local_stack import ISSUER_VAT, LocalStack, StackSettings, cash_receipt, post_json

T = TypeVar("T")
Model = TypeVar("Model", bound=BaseModel)
POLL_S = 0.05
# Provider timeouts with room for a loaded 2-core CI machine: a sandbox answer that is merely
# slow must not become a timeout (an offline receipt) in a test that expects it online.
E2E_DEFAULTS: dict[str, Any] = {
    "printer_backend": "dummy",
    "connect_timeout_s": 2.0,
    "read_timeout_s": 4.0,
    "total_timeout_s": 5.0,
}


def quiet_settings(**overrides: Any) -> StackSettings:
    """A stack whose background sync and probe never run on their own during a test (an hour
    apart): what happens is what the test does. `E2E_DEFAULTS` timeouts, a dummy printer."""
    options: dict[str, Any] = {
        **E2E_DEFAULTS,
        "sync_interval_s": 3600.0,
        "probe_interval_s": 3600.0,
        **overrides,
    }
    return StackSettings(**options)


@contextmanager
def running_stack(root: Path, settings: StackSettings) -> Iterator[LocalStack]:
    """Sandbox and daemon started in `root`, stopped whatever the test did."""
    stack = LocalStack(root, settings)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def parsed(response: httpx.Response, model: type[Model], status: int = 201) -> Model:
    """The answer read as the API's own model once its status is checked: a field renamed or
    retyped fails here, as it would break a till, instead of passing a string-key read."""
    assert response.status_code == status, response.text
    return model.model_validate_json(response.content)


def wait_for(check: Callable[[], T | None], *, timeout_s: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(POLL_S)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


def sample_value(exposition: str, name: str, **labels: str) -> float | None:
    """One sample of a Prometheus exposition, by name and the labels given (others ignored)."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


@dataclass
class E2EStack:
    """A `LocalStack` plus what the tests ask of it."""

    stack: LocalStack

    # -- the POS side ----------------------------------------------------------------------------

    def client(self, timeout_s: float = 30.0) -> httpx.Client:
        return self.stack.client(timeout_s)

    def post(self, path: str, body: Any) -> httpx.Response:
        with self.client() as client:
            return post_json(client, path, body)

    def get(self, path: str, **params: Any) -> httpx.Response:
        with self.client() as client:
            return client.get(path, params=params or None)

    def receipt(self, receipt_id: int) -> DocumentAnswer:
        return parsed(self.get(f"/v1/receipts/{receipt_id}"), DocumentAnswer, 200)

    def issue(self, body: Any, path: str = "/v1/receipts", status: int = 201) -> DocumentAnswer:
        """A receipt (`/v1/receipts`) or POS receipt (`/v1/pos-receipts`) issued, as its model."""
        return parsed(self.post(path, body), DocumentAnswer, status)

    # -- the provider side -----------------------------------------------------------------------

    def set_faults(self, mode: str, **options: Any) -> None:
        self.stack.set_faults(mode, **options)

    def provider_documents(self) -> list[dict[str, Any]]:
        return self.stack.provider_documents()

    def provider_document(self, uid: str) -> dict[str, Any] | None:
        found = [d for d in self.provider_documents() if d["uid"] == uid]
        assert len(found) <= 1, f"the sandbox holds {len(found)} documents for UID {uid}"
        return found[0] if found else None

    def public_key_pem(self) -> bytes:
        with self.stack.provider() as client:
            response = client.get("/_sandbox/public-key")
            response.raise_for_status()
            return response.content

    # -- the agent's database (read-only, as the status CLI reads it) ---------------------------

    @contextmanager
    def database(self) -> Iterator[sqlite3.Connection]:
        conn = self.stack.open_store()
        try:
            yield conn
        finally:
            conn.close()

    def document_count(self) -> int:
        with self.database() as conn:
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])

    def last_numbers(self) -> dict[str, int]:
        with self.database() as conn:
            return store.last_numbers(conn)

    def stored(self, receipt_id: int) -> store.StoredDocument:
        with self.database() as conn:
            doc = store.get_document(conn, receipt_id)
        assert doc is not None, f"no document {receipt_id} in the agent's database"
        return doc

    def stored_by_request(self, request_id: str) -> store.StoredDocument | None:
        with self.database() as conn:
            return store.get_by_request_id(conn, request_id)

    # -- secrets and logs ------------------------------------------------------------------------

    def api_key(self) -> str:
        return self.stack.api_key_file.read_text(encoding="utf-8").strip()

    def logs(self) -> dict[str, str]:
        return {
            name: (self.stack.root / name).read_text(encoding="utf-8", errors="replace")
            for name in ("daemon.log", "sandbox.log")
            if (self.stack.root / name).exists()
        }

    def assert_api_key_not_logged(self) -> None:
        key = self.api_key()
        assert len(key) >= 16
        for name, text in self.logs().items():
            assert key not in text, f"the provider API key appears in {name}"

    # -- lifecycle -------------------------------------------------------------------------------

    def daemon_alive(self) -> bool:
        return self.stack.daemon is not None and self.stack.daemon.poll() is None

    def breaker(self) -> str:
        return parsed(self.get("/v1/health"), Health, 200).breaker

    def close_breaker(self, timeout_s: float = 20.0) -> None:
        def closed() -> bool:
            if self.breaker() == "closed":
                return True
            self.post("/v1/sync", {})
            return False

        wait_for(closed, timeout_s=timeout_s, what="the breaker to close")

    def sync_until_accepted(self, receipt_ids: list[int], timeout_s: float = 60.0) -> None:
        """`POST /v1/sync` until every one of these receipts is accepted."""

        def accepted() -> bool:
            self.post("/v1/sync", {})
            return all(self.receipt(i).state == "accepted" for i in receipt_ids)

        wait_for(accepted, timeout_s=timeout_s, what=f"receipts {receipt_ids} accepted")

    def stop_cleanly(self) -> str:
        """SIGTERM: exit 0 with no traceback or ERROR line; returns what it logged meanwhile."""
        before = len(self.logs()["daemon.log"])
        assert self.stack.stop_daemon(timeout_s=10) == 0
        logged = self.logs()["daemon.log"][before:]
        assert "Traceback" not in logged and " ERROR " not in logged, logged
        return logged

    def reset(self) -> None:
        """Faults off, daemon running, breaker closed: every test starts from a healthy stack."""
        self.set_faults("ok")
        if not self.daemon_alive():
            self.stack.start_daemon()
        self.close_breaker()


def e2e_stack(**settings: Any) -> tuple[Any, Any]:
    """The module-scoped stack fixture and the per-test fixture that resets and returns it."""

    @pytest.fixture(scope="module", name="e2e_stack_process")
    def e2e_stack_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EStack]:
        options: dict[str, Any] = {**E2E_DEFAULTS, **settings}
        local = LocalStack(tmp_path_factory.mktemp("stack"), StackSettings(**options))
        local.start()
        try:
            yield E2EStack(local)
        finally:
            local.stop()

    @pytest.fixture(name="stack")
    def stack(e2e_stack_process: E2EStack) -> E2EStack:
        e2e_stack_process.reset()
        return e2e_stack_process

    return e2e_stack_process, stack


__all__ = [
    "ISSUER_VAT",
    "E2EStack",
    "cash_receipt",
    "e2e_stack",
    "parsed",
    "sample_value",
    "wait_for",
]
