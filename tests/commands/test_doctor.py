"""`pos-agent doctor`: one line per check with a fix hint; exit 0 OK, 1 warnings, 2 failures."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import offline_store as store
from agent import __version__
from agent.commands.doctor import check_provider
from agent.commands.doctor_printer import TEST_SLIP_TEXT
from agent.config import load_config
from agent.secrets import ApiKey
from agent.tools.local_stack import LocalStack
from offline_store.database import open_database
from offline_store.journal_detail import pack_detail
from printers.codepages import code_page
from tests.commands.test_status import fast_settings, run_cli, write_config
from tests.offline_store.factory import T0, issue

LINE = re.compile(r"^\[( OK |WARN|FAIL)\] [a-z /]+ — ")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("doctor"), fast_settings()) as stack:
        yield stack


def check_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("[")]


def test_broken_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(
        tmp_path, socket_path=tmp_path / "agent.sock", body='[printer]\nport = "nine"\n'
    )
    code, out = run_cli(capsys, "doctor", "--config", str(config))
    assert code == 2
    (line,) = check_lines(out)
    assert line.startswith("[FAIL] config — ")
    assert "printer.port" in line
    assert "fix the named key" in line


def test_unknown_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(
        tmp_path, socket_path=tmp_path / "agent.sock", body="[sync]\ninterval = 5\n"
    )
    code, out = run_cli(capsys, "doctor", "--config", str(config))
    assert code == 2 and "sync.interval" in out


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "doctor", "--config", str(tmp_path / "nope.toml"))
    assert code == 2 and "does not exist" in out


@pytest.mark.e2e
def test_good_install_against_the_sandbox(
    live: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(capsys, "doctor", "--config", str(live.config_path))
    lines = check_lines(out)
    assert code == 0, out
    assert all(LINE.match(line) for line in lines), out
    names = [line[7:].split(" — ")[0] for line in lines]
    assert names == [
        "config",
        "credentials",
        "provider footer",
        "socket",
        "state directory",
        "storage",
        "database",
        "provider",
        "clock",
        "code page",
        "printer",
    ]
    assert all(line.startswith("[ OK ]") for line in lines), out
    assert f"daemon {__version__} answers" in out
    assert "credentials accepted" in out
    assert "quick_check ok" in out


@pytest.mark.e2e
def test_print_test_sends_a_greek_slip(
    live: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(capsys, "doctor", "--print-test", "--config", str(live.config_path))
    assert code == 0, out
    assert "[ OK ] test slip — " in out
    data = live.printer_path.read_bytes()
    greek = code_page("cp1253")
    assert greek.encode("ΔΟΚΙΜΗ ΕΚΤΥΠΩΤΗ") in data
    assert greek.encode("ΑΒΓΔ αβγδ €") in data
    assert data.startswith(b"\x1b@\x1bt")  # init, then the Greek table


@pytest.mark.e2e
def test_provider_down_fails_with_a_hint(
    live: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    live.set_faults("down")
    try:
        code, out = run_cli(capsys, "doctor", "--config", str(live.config_path))
    finally:
        live.set_faults("ok")
    assert code == 2
    (provider,) = [line for line in check_lines(out) if " provider — " in line]
    assert provider.startswith("[FAIL] provider — ") and "unreachable" in provider
    assert "check the network" in provider
    assert "[WARN] clock — " in out  # no answer, so no Date header


def test_key_readable_by_others_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    (tmp_path / "key").chmod(0o644)
    code, out = run_cli(capsys, "doctor", "--config", str(config))
    assert code == 2
    (line,) = [line for line in check_lines(out) if " credentials — " in line]
    assert line.startswith("[FAIL]") and f"chmod 600 {tmp_path / 'key'}" in line


def test_daemon_down_and_no_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    code, out = run_cli(capsys, "doctor", "--config", str(config))
    assert code == 2
    lines = {line[7:].split(" — ")[0]: line for line in check_lines(out)}
    assert lines["socket"].startswith("[FAIL]") and "systemctl" in lines["socket"]
    assert lines["state directory"].startswith("[FAIL]")
    assert lines["database"].startswith("[WARN]")
    assert lines["provider"].startswith("[FAIL]")  # nothing listens on 127.0.0.1:9


def test_damaged_database_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "pos-agent.sqlite3").write_bytes(b"garbage" * 1000)
    code, out = run_cli(capsys, "doctor", "--config", str(config))
    assert code == 2
    (line,) = [line for line in check_lines(out) if " database — " in line]
    assert line.startswith("[FAIL]") and "Do NOT delete it" in line


def test_clock_far_off_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.elise.outcomes import SignatureValidation

    config = load_config(write_config(tmp_path, socket_path=tmp_path / "agent.sock"))

    async def probe(config, key):
        return SignatureValidation(valid=False, raw={}), 900.0

    monkeypatch.setattr("agent.commands.doctor._probe", probe)
    provider, clock = check_provider(config, ApiKey("k" * 32))
    assert provider.level == 0
    assert clock.level == 2 and "900 s behind" in clock.detail
    assert "timedatectl" in clock.hint


def test_cp737_prints_eur_for_the_euro_sign(tmp_path: Path) -> None:
    from agent.commands.doctor_printer import check_printer

    config = load_config(
        write_config(
            tmp_path,
            socket_path=tmp_path / "agent.sock",
            body=f'[printer]\nbackend = "file"\npath = "{tmp_path / "lp0"}"\nprofile = "cp737"\n',
        )
    )
    checks = check_printer(config, print_test=True)
    assert [c.level for c in checks] == [0, 0, 0]
    assert "€ prints as 'EUR'" in checks[0].detail
    data = (tmp_path / "lp0").read_bytes()
    assert code_page("cp737").encode(TEST_SLIP_TEXT) in data


def test_footer_without_the_provider_details_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, socket_path=tmp_path / "none.sock")
    code, out = run_cli(capsys, "doctor", "--config", str(config))
    [line] = [line for line in check_lines(out) if "provider footer" in line]
    assert code == 2
    assert line.startswith("[FAIL] provider footer — provider.footer.legal_name is not set")
    assert "provider.footer.web_address" in line and "provider.footer.licence" in line
    assert "[provider.footer]" in line


def test_a_broken_metrics_web_config_fails_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  prometheus: not-a-hash\n")
    config = write_config(
        tmp_path,
        socket_path=tmp_path / "agent.sock",
        body=f'[metrics]\nlisten = "0.0.0.0:9870"\nweb_config_file = "{web}"\n',
    )
    code, out = run_cli(capsys, "doctor", "--config", str(config))
    assert code == 2
    [line] = [line for line in check_lines(out) if line.startswith("[FAIL] metrics — ")]
    assert "basic_auth_users.prometheus" in line and "not a bcrypt hash" in line


def test_an_open_metrics_listener_without_auth_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path, socket_path=tmp_path / "agent.sock", body='[metrics]\nlisten = "0.0.0.0:9870"\n'
    )
    _, out = run_cli(capsys, "doctor", "--config", str(config))
    [line] = [line for line in check_lines(out) if " metrics — " in line]
    assert line.startswith("[WARN] metrics — listener 0.0.0.0:9870: plain HTTP, basic auth off")
    assert "IPAddressAllow=" in line


def test_a_receipt_without_a_known_mark_warns_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    (tmp_path / "state").mkdir()
    conn = open_database(tmp_path / "state" / "pos-agent.sqlite3", now=T0)
    doc = issue(conn, "r-1")
    with store.transaction(conn):
        store.mark_accepted(conn, doc.id, mark=None, authentication_code=None, qr_url=None, now=T0)
    conn.close()
    _, out = run_cli(capsys, "doctor", "--config", str(config))
    (line,) = [line for line in check_lines(out) if " database — " in line]
    assert line.startswith("[WARN]"), line
    assert f"1 receipt(s) accepted without a known MARK ({doc.id})" in line


def test_an_entry_changed_inside_a_transaction_fails_naming_the_transaction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Inside a transaction only the last entry keeps its hash: an edit of an earlier one (by
    hand, triggers dropped) is still found, at the transaction's first entry."""
    config = write_config(tmp_path, socket_path=tmp_path / "agent.sock")
    (tmp_path / "state").mkdir()
    conn = open_database(tmp_path / "state" / "pos-agent.sqlite3", now=T0)
    try:
        doc = issue(conn, "r1")
        with store.transaction(conn):
            for event in ("document.accepted", "print.queued", "print.printing"):
                store.append_journal(conn, event, {"job_id": 1}, document_id=doc.id, at=T0)
        first = store.journal_last_seq(conn) - 2
        kept = conn.execute("SELECT seq FROM journal WHERE digest IS NOT NULL").fetchall()
        assert first not in {row[0] for row in kept}
        with store.transaction(conn):
            conn.execute("DROP TRIGGER journal_no_update")
            conn.execute(
                "UPDATE journal SET detail_packed = ? WHERE seq = ?",
                (pack_detail('{"job_id":2}'), first + 1),
            )
    finally:
        conn.close()
    code, out = run_cli(capsys, "doctor", "--config", str(config))
    assert code == 2
    (line,) = [line for line in check_lines(out) if " database — " in line]
    assert line.startswith("[FAIL]") and f"journal BROKEN: journal entry {first} " in line
