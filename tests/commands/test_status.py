"""`pos-agent status` through the real CLI: exit code and screen in each state.

Daemon-up states run against a real sandbox + daemon (`LocalStack`); past-deadline and rejected
documents are seeded into the database with `offline_store` before the daemon starts (the seeded
rows are not due for a retry, so the daemon leaves them as they are). Daemon-down states need no
processes: a config whose socket does not answer, over a database built in the test.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import offline_store as store
from agent.cli import main
from agent.clock import ATHENS
from agent.commands.common import use_colour
from agent.tools.local_stack import LocalStack, StackSettings, cash_receipt, post_json
from offline_store.migrations import MIGRATIONS
from tests.e2e.stack import wait_for
from tests.offline_store.factory import builder

ANSI = "\033["


# -- helpers shared with the other CLI tests ---------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def post(stack: LocalStack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    with stack.client() as client:
        response = post_json(client, path, body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def status_json(stack: LocalStack) -> dict[str, Any]:
    with stack.client() as client:
        return client.get("/v1/status").json()


def wait_settled(stack: LocalStack) -> None:
    """No print job left in the queue and nothing waiting for the provider (a document whose
    retry time has not come yet is skipped by a sync, so the sync is asked for again)."""

    def settled() -> bool:
        report = status_json(stack)
        backlog = report["store"]["backlog"]
        if backlog["delayed"] + backlog["pending"]:
            post(stack, "/v1/sync", {})
            return False
        return not report["printer"]["queued"]

    wait_for(settled, timeout_s=10, what="the print queue and the backlog to drain")


def fast_settings() -> StackSettings:
    return StackSettings(
        sync_interval_s=300.0, probe_interval_s=300.0, backoff_base_s=0.02, backoff_max_s=0.1
    )


def seed(
    database: Path, *, delayed_issued_at: datetime | None = None, rejected: bool = False
) -> None:
    """Documents written straight into the store, as the daemon would have left them."""
    conn = store.open_database(database)
    now = datetime.now(ATHENS)
    try:
        if delayed_issued_at is not None:
            with store.transaction(conn):
                doc = store.insert_document(
                    conn,
                    "SEED",
                    builder("seed-delayed", series="SEED", issued_at=delayed_issued_at),
                    now=now,
                )
                store.mark_delayed(
                    conn,
                    doc.id,
                    code=1,
                    due_at=delayed_issued_at + timedelta(days=1),
                    next_attempt_at=now + timedelta(days=30),
                    error="unreachable: seeded",
                    now=now,
                )
        if rejected:
            with store.transaction(conn):
                doc = store.insert_document(
                    conn, "SEED", builder("seed-rejected", series="SEED", issued_at=now), now=now
                )
                store.mark_rejected(conn, doc.id, error="400: Details[0].VatCategoryCode", now=now)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def seeded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalStack]]:
    """Start a stack whose database was seeded before the daemon opened it."""
    stacks: list[LocalStack] = []

    def start(**seeding: Any) -> LocalStack:
        stack = LocalStack(tmp_path_factory.mktemp("seeded"), fast_settings())
        stacks.append(stack)
        stack.start_sandbox()
        stack.write_config()
        stack.state_dir.mkdir(parents=True)
        seed(stack.state_dir / "pos-agent.sqlite3", **seeding)
        stack.start_daemon()
        return stack

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("status"), fast_settings()) as stack:
        yield stack


def write_config(tmp_path: Path, *, socket_path: Path, body: str = "") -> Path:
    """A config for daemon-down tests: state in tmp_path, a socket nobody listens on."""
    key = tmp_path / "key"
    key.write_text("k" * 32)
    key.chmod(0o600)
    config = tmp_path / "pos-agent.toml"
    config.write_text(
        f"""state_dir = "{tmp_path / "state"}"
[issuer]
vat = "EL094019245"
name = "ΔΟΚΙΜΗ"
[provider]
base_url = "http://127.0.0.1:9"
portal_url = "http://127.0.0.1:9"
api_key_file = "{key}"
[api]
socket_path = "{socket_path}"
socket_group = ""
{body}
""",
        encoding="utf-8",
    )
    return config


# -- daemon up ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_healthy_register_is_ok(live: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    answer = post(live, "/v1/receipts", cash_receipt("status-healthy"))
    assert answer["state"] == "accepted"
    wait_settled(live)

    code, out = run_cli(capsys, "status", "--config", str(live.config_path))

    assert code == 0, out
    assert out.startswith("pos-agent status: OK")
    for label in (
        "Daemon",
        "Provider",
        "Credentials",
        "Backlog",
        "Rejected",
        "Printer",
        "Clock",
        "Database",
    ):
        assert f"\n{label}" in out, f"{label} missing from:\n{out}"
    assert "up, version" in out and "breaker closed" in out and "all good" in out
    assert ANSI not in out  # captured output is not a terminal


@pytest.mark.e2e
def test_json_is_the_daemon_report(live: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    wait_settled(live)
    code, out = run_cli(capsys, "status", "--json", "--config", str(live.config_path))
    report = json.loads(out)
    assert code == report["exit_code"] == 0
    assert report["level"] == "OK" and report["source"] == "daemon"
    assert report["daemon"]["running"] is True
    assert {"provider", "clock", "printer", "store", "findings"} <= report.keys()


@pytest.mark.e2e
def test_backlog_within_deadline_is_warn(
    live: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    live.set_faults("down")
    try:
        answer = post(live, "/v1/receipts", cash_receipt("status-offline"))
        assert answer["state"] == "delayed" and answer["delayed_code"] == 1

        code, out = run_cli(capsys, "status", "--config", str(live.config_path))

        assert code == 1, out
        assert out.startswith("pos-agent status: WARN")
        assert "1 delayed (code 1 provider: 1, code 2 AADE: 0)" in out
        assert "left" in out and "deadline" in out  # oldest delayed vs its deadline
        assert "breaker open" in out
    finally:
        live.set_faults("ok")
        wait_settled(live)


@pytest.mark.e2e
def test_backlog_past_deadline_is_critical(
    seeded_stack: Callable[..., LocalStack], capsys: pytest.CaptureFixture[str]
) -> None:
    stack = seeded_stack(delayed_issued_at=datetime.now(ATHENS) - timedelta(days=3))

    code, out = run_cli(capsys, "status", "--config", str(stack.config_path))

    assert code == 2, out
    assert out.startswith("pos-agent status: CRITICAL")
    assert "up, version" in out
    assert "PAST DEADLINE" in out
    assert "past their transmission deadline" in out
    assert "rejected" not in out.split("Findings:")[1]


@pytest.mark.e2e
def test_rejected_documents_are_critical(
    seeded_stack: Callable[..., LocalStack], capsys: pytest.CaptureFixture[str]
) -> None:
    stack = seeded_stack(rejected=True)

    code, out = run_cli(capsys, "status", "--config", str(stack.config_path))

    assert code == 2, out
    assert "1 need a person" in out
    findings = out.split("Findings:")[1]
    assert "CRITICAL: 1 receipt(s) rejected by the provider need a person" in findings
    assert "deadline" not in findings


# -- daemon down -------------------------------------------------------------------------------


def test_daemon_down_reads_the_database_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    (tmp_path / "state").mkdir()
    seed(
        tmp_path / "state" / "pos-agent.sqlite3",
        delayed_issued_at=datetime.now(ATHENS) - timedelta(hours=2),
    )

    code, out = run_cli(capsys, "status", "--config", str(config))

    assert code == 2, out
    assert "Daemon      DOWN" in out
    assert "read from the database directly" in out
    assert "1 delayed (code 1 provider: 1" in out
    assert "CRITICAL: daemon is not running" in out


def test_daemon_down_with_a_stale_socket_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.close()  # the file stays, nobody listens: a crashed daemon
    config = write_config(tmp_path, socket_path=path)
    (tmp_path / "state").mkdir()
    store.open_database(tmp_path / "state" / "pos-agent.sqlite3").close()

    code, out = run_cli(capsys, "status", "--json", "--config", str(config))

    report = json.loads(out)
    assert code == 2
    assert report["daemon"]["running"] is False
    assert "nothing answers" in report["daemon"]["reason"]
    assert report["source"] == "database"


def test_a_daemon_that_answers_without_a_report_is_unknown_not_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A daemon whose /v1/status fails (HTTP 500) is running: saying "not running" would send the
    technician to restart a service that is up. Its state is UNKNOWN, with the reason."""
    path = tmp_path / "agent.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()

    def answer_500() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            body = b'{"error": {"code": "internal_error", "message": "the agent failed"}}'
            connection.sendall(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )

    server = threading.Thread(target=answer_500)
    server.start()
    config = write_config(tmp_path, socket_path=path)
    (tmp_path / "state").mkdir()
    store.open_database(tmp_path / "state" / "pos-agent.sqlite3").close()
    try:
        code, out = run_cli(capsys, "status", "--json", "--config", str(config))
    finally:
        server.join(timeout=10)
        listener.close()

    report = json.loads(out)
    assert code == 3, out
    assert report["daemon"]["running"] is None
    assert report["findings"][0] == "UNKNOWN: the daemon answered HTTP 500 on /v1/status"
    assert not any("daemon is not running" in f for f in report["findings"])


def test_unreadable_config_is_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[issuer\n")
    code, out = run_cli(capsys, "status", "--config", str(config))
    assert code == 3
    assert "UNKNOWN" in out and "not valid TOML" in out


def test_damaged_database_is_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "pos-agent.sqlite3").write_bytes(b"this is not a database" * 100)

    code, out = run_cli(capsys, "status", "--config", str(config))

    assert code == 3, out
    assert "damaged" in out and "Do NOT delete it" in out


def test_a_database_from_a_newer_agent_is_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a downgrade with the daemon down: the older status refuses to read the newer
    schema (its tables may mean something else now) and says what to do."""
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    (tmp_path / "state").mkdir()
    database = tmp_path / "state" / "pos-agent.sqlite3"
    store.open_database(database).close()
    conn = sqlite3.connect(database)
    conn.execute(f"PRAGMA user_version = {MIGRATIONS[-1].version + 1}")
    conn.close()

    code, out = run_cli(capsys, "status", "--config", str(config))

    assert code == 3, out
    assert (
        f"database schema version {MIGRATIONS[-1].version + 1} is newer than this agent knows "
        f"({MIGRATIONS[-1].version}); install the newer pos-agent again instead of downgrading"
    ) in out


def test_missing_database_is_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    code, out = run_cli(capsys, "status", "--config", str(config))
    assert code == 3
    assert "no database at" in out


def test_config_defaults_to_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    monkeypatch.setenv("POS_AGENT_CONFIG", str(config))
    code, out = run_cli(capsys, "status")
    assert code == 3 and "no database at" in out  # read that config, not /etc


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(Tty())
    assert not use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(Tty())


def test_status_screen_is_coloured_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    (tmp_path / "state").mkdir()
    store.open_database(tmp_path / "state" / "pos-agent.sqlite3").close()
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr("agent.commands.status.use_colour", lambda stream: True)
    code, out = run_cli(capsys, "status", "--config", str(config))
    assert code == 2
    assert ANSI in out


def _as_nobody(argv: list[str]) -> tuple[int, str]:
    """`pos-agent ARGV` in a forked child that dropped root for nobody/nogroup: the kernel, not
    the test, refuses what a till user may not read. Output comes back through a pipe."""
    import agent.commands.status  # noqa: F401  (loaded before the fork: nobody cannot read /root)

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
            sys.stderr = sys.stdout
            code = main(argv)
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, encoding="utf-8") as output:
        text = output.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), text


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory nobody may enter (pytest's own tmp tree is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="pos-agent-status-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_a_config_this_user_cannot_read_is_unknown_in_one_line(open_dir: Path) -> None:
    """A till user asks while the daemon is down: no traceback, exit 3, what to do."""
    config = write_config(open_dir, socket_path=open_dir / "agent.sock")
    config.chmod(0o640)  # root:root here; root:pos-agent on a register

    code, out = _as_nobody(["status", "--config", str(config), "--socket", str(open_dir / "s")])

    assert code == 3, out
    assert out.splitlines() == [
        "pos-agent status: UNKNOWN   (exit 3)",
        f"  no socket at {open_dir / 's'}; and config file {config} is not readable by this "
        "user; run as root (sudo)",
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_a_socket_directory_closed_to_this_user_is_unknown_in_one_line(open_dir: Path) -> None:
    """Outside group pos, /run/pos-agent (2750 pos-agent:pos) cannot even be looked into."""
    config = write_config(open_dir, socket_path=open_dir / "agent.sock")
    config.chmod(0o640)
    closed = open_dir / "run"
    closed.mkdir(mode=0o750)

    code, out = _as_nobody(["status", "--config", str(config), "--socket", str(closed / "s")])

    assert code == 3, out
    assert "Traceback" not in out
    assert f"permission denied on {closed / 's'}: run as root or as a member of the" in out
