"""`pos-agent sync` and `pos-agent reprint ID` against a real sandbox + daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.tools.local_stack import LocalStack, cash_receipt
from tests.commands.test_status import (
    fast_settings,
    post,
    run_cli,
    status_json,
    wait_settled,
    write_config,
)
from tests.e2e.stack import wait_for


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("admin"), fast_settings()) as stack:
        yield stack


def offline_receipts(stack: LocalStack, *request_ids: str) -> list[dict]:
    stack.set_faults("down")
    answers = [post(stack, "/v1/receipts", cash_receipt(rid)) for rid in request_ids]
    assert all(a["state"] == "delayed" for a in answers)
    return answers


@pytest.mark.e2e
def test_sync_sends_the_backlog_and_shows_each_document(
    live: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = offline_receipts(live, "sync-1", "sync-2")
    live.set_faults("ok")

    code, out = run_cli(capsys, "sync", "--config", str(live.config_path))

    assert code == 0, out
    assert "backlog before: 2 delayed" in out
    for answer in answers:
        assert f"{answer['series']}/{answer['number']} (receipt {answer['receipt_id']})" in out
    assert out.count("accepted, MARK 4") == 2
    assert "sync: 2 sent, 2 accepted, 0 still delayed, 0 rejected" in out
    assert "backlog now: 0 delayed, 0 pending" in out
    wait_settled(live)


@pytest.mark.e2e
def test_sync_while_the_provider_is_down_leaves_a_backlog(
    live: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    offline_receipts(live, "sync-down-1")
    try:
        code, out = run_cli(capsys, "sync", "--json", "--config", str(live.config_path))
        body = json.loads(out)
        assert code == 1, out
        assert body["exit_code"] == 1
        assert body["backlog_after"]["delayed"] == 1
    finally:
        live.set_faults("ok")
        wait_settled(live)


@pytest.mark.e2e
def test_reprint_queues_a_copy(live: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    answer = post(live, "/v1/receipts", cash_receipt("reprint-1"))
    wait_settled(live)
    printed_before = status_json(live)["printer"]["printed"]

    code, out = run_cli(
        capsys, "reprint", str(answer["receipt_id"]), "--config", str(live.config_path)
    )

    assert code == 0, out
    assert f"receipt {answer['receipt_id']}: print job" in out and "ΑΝΤΙΓΡΑΦΟ" in out
    wait_for(
        lambda: status_json(live)["printer"]["printed"] == printed_before + 1,
        timeout_s=10,
        what="the copy to print",
    )
    code, _ = run_cli(
        capsys, "reprint", str(answer["receipt_id"]), "--config", str(live.config_path)
    )
    assert code == 0  # a fresh request_id each time: a second copy, not a replay


@pytest.mark.e2e
def test_reprint_of_an_unknown_receipt(
    live: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(capsys, "reprint", "999999", "--config", str(live.config_path))
    assert code == 1
    assert "receipt_not_found" in out


def test_daemon_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    code, out = run_cli(capsys, "sync", "--config", str(config))
    assert code == 2 and "daemon is down" in out
    code, out = run_cli(capsys, "reprint", "1", "--config", str(config))
    assert code == 2 and "daemon is down" in out
