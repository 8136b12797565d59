"""The database goes back in time: its WAL is lost after a SIGKILL (a restore of only the main
file, a bad SD card). Before, the daemon started as if nothing happened, the next sale reused
number 3 and the agent adopted the MARK of the earlier, different sale 3 from the provider's 409.

The promises: the high-water mark beside the database shows the rollback at start; issuing in
that series is refused (503 database_rolled_back, nothing written, nothing sent); status is
CRITICAL with the procedure. Should the mark be lost too, the provider's 409 on the first send
of the reused number is not adopted: the document is flagged for a person, never given another
sale's MARK."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import offline_store as store
from agent.commands.doctor import check_database
from agent.config import load_config
from agent.core.answers import DocumentAnswer, SignatureAnswer
from agent.core.status_report import Level, StatusReport
from agent.tools.local_stack import LocalStack, cash_receipt, post_json
from tests.e2e.stack import parsed, quiet_settings, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with running_stack(tmp_path, quiet_settings()) as local:
        yield local


def sell(stack: LocalStack, request_id: str) -> tuple[int, dict[str, Any]]:
    with stack.client() as till:
        response = post_json(till, "/v1/receipts", cash_receipt(request_id))
    return response.status_code, response.json()


def status_report(stack: LocalStack) -> StatusReport:
    with stack.client() as till:
        return parsed(till.get("/v1/status"), StatusReport, 200)


def lose_the_wal(stack: LocalStack) -> None:
    """Two receipts reach the main file (clean stop checkpoints the WAL), two more only the WAL;
    then the daemon is killed and the WAL deleted."""
    for n in (1, 2):
        assert sell(stack, f"rb-{n}")[0] == 201
    assert stack.stop_daemon() == 0
    stack.start_daemon()
    for n in (3, 4):
        status, body = sell(stack, f"rb-{n}")
        assert status == 201 and body["state"] == "accepted", body
    stack.kill_daemon()
    for suffix in ("-wal", "-shm"):
        Path(f"{stack.database_path}{suffix}").unlink(missing_ok=True)


def provider_marks(stack: LocalStack) -> dict[str, int]:
    return {doc["uid"]: doc["mark"] for doc in stack.provider_documents()}


def _rollback_accept(stack: LocalStack) -> subprocess.CompletedProcess[str]:
    """The technician's `pos-agent rollback accept`, as a separate process."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "rollback",
            "accept",
            "--config",
            str(stack.config_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_lost_wal_is_detected_and_no_number_is_reused(stack: LocalStack) -> None:
    lose_the_wal(stack)
    at_provider = provider_marks(stack)
    assert len(at_provider) == 4
    stack.start_daemon()
    with closing(stack.open_store()) as conn:
        assert store.last_numbers(conn) == {"ΑΛΠ": 2}, "the WAL loss did not take receipts 3-4 away"

    status, body = sell(stack, "rb-5")
    assert status == 503, body
    assert body["error"]["code"] == "database_rolled_back", body
    assert "issued up to 4" in body["error"]["message"]
    report = status_report(stack)
    assert report.exit_code is Level.CRITICAL
    assert report.store is not None and report.store.rolled_back is not None
    assert report.store.rolled_back.startswith("series ΑΛΠ at 2, the register had issued up to 4")
    assert any("went back in time" in f and "rollback accept" in f for f in report.findings)
    doctor = check_database(load_config(stack.config_path))
    assert doctor.level is Level.CRITICAL and "went back in time" in doctor.detail, doctor
    with closing(stack.open_store()) as conn:
        assert store.last_numbers(conn) == {"ΑΛΠ": 2}  # nothing was written
    assert provider_marks(stack) == at_provider  # nothing was sent

    # The technician found no newer copy: numbers 3-4 become void here, issuing resumes at 5.
    accepted = _rollback_accept(stack)
    assert accepted.returncode == 0, accepted.stderr
    assert "series ΑΛΠ: numbers 3-4 recorded as void here" in accepted.stdout
    status, body = sell(stack, "rb-5")
    assert status == 201 and body["state"] == "accepted", body
    with closing(stack.open_store()) as conn:
        assert store.get_by_request_id(conn, "rb-5").number == 5  # type: ignore[union-attr]
        void = store.list_documents(conn, state=store.DocumentState.VOID)
        assert sorted(d.number for d in void) == [3, 4]
        assert store.numbering_gaps(conn) == {}
        assert store.verify_journal(conn).ok
    report = status_report(stack)
    assert report.store is not None and report.store.rolled_back is None
    assert not any("went back in time" in f for f in report.findings), report
    assert len(provider_marks(stack)) == 5
    again = _rollback_accept(stack)
    assert again.returncode == 1 and "nothing_rolled_back" in again.stderr


def test_without_the_mark_a_reused_number_is_flagged_not_given_another_sales_mark(
    stack: LocalStack,
) -> None:
    lose_the_wal(stack)
    at_provider = provider_marks(stack)
    (stack.state_dir / store.HIGH_WATER_FILE).unlink()  # the whole state dir restored, say
    stack.start_daemon()

    status, body = sell(stack, "rb-5")  # number 3 again: the provider holds that UID
    assert status == 422, body
    assert body["error"]["code"] == "provider_rejected"
    receipt = body["error"]["receipt"]
    assert receipt["state"] == "rejected" and receipt.get("mark") is None, receipt
    assert "never sent" in body["error"]["message"]
    assert provider_marks(stack) == at_provider
    with closing(stack.open_store()) as conn:
        doc = store.get_by_request_id(conn, "rb-5")
        assert doc is not None and doc.mark is None and doc.number == 3
    report = status_report(stack)
    assert report.exit_code is Level.CRITICAL
    assert any("rejected by the provider need a person" in f for f in report.findings)


BEER = [{"description": "Μπίρα", "quantity": "1", "unit_price": "4.00", "vat_category": 1}]


def _card_receipt(request_id: str, signature_id: int) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "lines": BEER,
        "payments": [
            {
                "method": 7,
                "amount": "4.00",
                "terminal_id": "TID1",
                "transaction_id": "TX-1",
                "signature_id": signature_id,
            }
        ],
    }


def _sign(stack: LocalStack, request_id: str) -> SignatureAnswer:
    body = {
        "request_id": request_id,
        "terminal_id": "TID1",
        "document_type": "11.1",
        "lines": BEER,
        "amount": "4.00",
    }
    with stack.client() as till:
        return parsed(post_json(till, "/v1/payments/sign", body), SignatureAnswer)


def test_a_card_sale_whose_reservation_the_rollback_voided_is_told_so_and_signs_again(
    stack: LocalStack,
) -> None:
    """The reservation was made before the lost part, so `rollback accept` voids it (the lost
    part may have issued it). The till's issue with that signature gets `reservation_voided`
    (not `reservation_used`: nothing was issued here), signs again, and the same request_id
    goes through with the new signature."""
    signed = _sign(stack, "card-sign-1")
    assert stack.stop_daemon() == 0
    stack.start_daemon()
    assert sell(stack, "rb-wal-only")[0] == 201
    stack.kill_daemon()
    for suffix in ("-wal", "-shm"):
        Path(f"{stack.database_path}{suffix}").unlink(missing_ok=True)
    stack.start_daemon()
    accepted = _rollback_accept(stack)
    assert accepted.returncode == 0, accepted.stderr

    with stack.client() as till:
        refused = post_json(till, "/v1/receipts", _card_receipt("card-1", signed.signature_id))
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "reservation_voided", error
    assert f"/{signed.number} was voided" in error["message"], error
    assert "rollback accept" in error["message"] and "sign the sale again" in error["message"]

    again = _sign(stack, "card-sign-2")
    assert again.number > signed.number
    with stack.client() as till:
        issued = post_json(till, "/v1/receipts", _card_receipt("card-1", again.signature_id))
    assert parsed(issued, DocumentAnswer).number == again.number
    with closing(stack.open_store()) as conn:
        assert store.numbering_gaps(conn) == {}
        assert store.verify_journal(conn).ok
