"""A provider answer carrying another document's UID (the sandbox's `foreign_uid` fault: it
stores the document under its own UID but names another in the 201). Before, the document was
accepted with that MARK. The promise: the MARK is not adopted, the document is kept for a person
(state rejected, status CRITICAL), on the first send and in the sync alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

import offline_store as store
from agent.core.answers import DocumentAnswer
from agent.core.status_report import Level, StatusReport
from agent.core.sync_report import SyncReport
from agent.tools.local_stack import LocalStack, cash_receipt, post_json
from tests.e2e.stack import parsed, quiet_settings, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with running_stack(tmp_path, quiet_settings()) as local:
        yield local


def test_an_answer_naming_another_uid_is_not_adopted(stack: LocalStack) -> None:
    stack.set_faults("foreign_uid")
    with stack.client() as till:
        first = post_json(till, "/v1/receipts", cash_receipt("foreign-first"))
    stack.set_faults("down")
    with stack.client() as till:
        offline = parsed(
            post_json(till, "/v1/receipts", cash_receipt("foreign-offline")), DocumentAnswer
        )
    assert offline.state == "delayed"
    stack.set_faults("foreign_uid")
    with stack.client() as till:
        report = parsed(till.post("/v1/sync"), SyncReport, 200)
        status = parsed(till.get("/v1/status"), StatusReport, 200)
    assert first.status_code == 422, first.text
    assert "not adopted" in first.json()["error"]["message"]
    assert report.rejected == 1 and report.accepted == 0, report
    with closing(stack.open_store()) as conn:
        for request_id in ("foreign-first", "foreign-offline"):
            doc = store.get_by_request_id(conn, request_id)
            assert doc is not None and doc.state == store.DocumentState.REJECTED
            assert doc.mark is None and doc.last_error and "not adopted" in doc.last_error
    assert status.exit_code is Level.CRITICAL
    assert any("need a person" in f for f in status.findings), status.findings
