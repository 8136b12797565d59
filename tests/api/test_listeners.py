import grp
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agent.api.listeners import (
    LOCK_FILE_NAME,
    AlreadyRunning,
    ListenerError,
    SystemdSockets,
    peer_credentials,
    single_instance_lock,
    systemd_listeners,
    tcp_listener,
    unix_listener,
)

OWN_GROUP = grp.getgrgid(os.getegid()).gr_name


def _other_usable_group() -> str | None:
    """A group we may chgrp to that is not our primary one (any group when root)."""
    candidates = [g.gr_gid for g in grp.getgrall()] if os.geteuid() == 0 else os.getgroups()
    for gid in candidates:
        if gid != os.getegid():
            return grp.getgrgid(gid).gr_name
    return None


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_socket_gets_mode_and_own_group(tmp_path: Path) -> None:
    path = tmp_path / "run" / "agent.sock"  # parent created on demand
    with unix_listener(path, mode=0o660, group=OWN_GROUP) as sock:
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert _mode(path) == 0o660
        assert path.stat().st_gid == os.getegid()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


def test_socket_given_to_another_group(tmp_path: Path) -> None:
    group = _other_usable_group()
    if group is None:
        pytest.skip("this user belongs to no second group to chgrp the socket to")
    path = tmp_path / "agent.sock"
    with unix_listener(path, mode=0o660, group=group):
        assert path.stat().st_gid == grp.getgrnam(group).gr_gid
        assert _mode(path) == 0o660


def test_setgid_directory_needs_no_chown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """How the shipped unit works: /run/pos-agent is setgid pos and chown(2) is forbidden."""
    group = _other_usable_group()
    if group is None:
        pytest.skip("this user belongs to no second group to make a setgid directory for")
    gid = grp.getgrnam(group).gr_gid
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.chown(run_dir, -1, gid)
    run_dir.chmod(0o2750)

    def forbidden(*args: object) -> None:
        raise AssertionError("chown(2) called; the unit's SystemCallFilter would refuse it")

    monkeypatch.setattr(os, "chown", forbidden)
    with unix_listener(run_dir / "agent.sock", mode=0o660, group=group):
        assert (run_dir / "agent.sock").stat().st_gid == gid


def test_missing_group_names_the_config_key_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    with pytest.raises(ListenerError, match=r"api\.socket_group: group 'no-such-group-x9'"):
        unix_listener(path, mode=0o660, group="no-such-group-x9")
    assert not path.exists()


def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    crashed.bind(str(path))
    crashed.close()  # the file stays, nobody listens: what a SIGKILL leaves behind
    with (
        unix_listener(path, mode=0o660, group=None) as sock,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client,
    ):
        client.connect(str(path))
        conn, _ = sock.accept()
        conn.close()


def test_live_socket_means_already_running(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    with unix_listener(path, mode=0o660, group=None):
        inode = path.stat().st_ino
        with pytest.raises(AlreadyRunning, match="already answers on"):
            unix_listener(path, mode=0o660, group=None)
        assert path.stat().st_ino == inode  # the live socket was left alone


def test_non_socket_file_is_never_deleted(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    path.write_text("precious")
    with pytest.raises(ListenerError, match=r"api\.socket_path: .* is not a socket"):
        unix_listener(path, mode=0o660, group=None)
    assert path.read_text() == "precious"


def test_peer_credentials_are_ours(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    with (
        unix_listener(path, mode=0o660, group=None) as server,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client,
    ):
        client.connect(str(path))
        conn, _ = server.accept()
        with conn:
            assert peer_credentials(conn) == (os.getpid(), os.getuid(), os.getgid())
            assert peer_credentials(client) == (os.getpid(), os.getuid(), os.getgid())


def test_peer_credentials_of_another_process(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    with unix_listener(path, mode=0o660, group=None) as server:
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
                " s.recv(1)",
                str(path),
            ]
        )
        try:
            server.settimeout(10)
            conn, _ = server.accept()
            with conn:
                assert peer_credentials(conn)[0] == child.pid
                conn.sendall(b"x")
        finally:
            assert child.wait(timeout=10) == 0


# Child side of socket activation: adopt the fds, then answer one client with what it saw.
ADOPTER = textwrap.dedent(
    """
    import json, os, socket
    from agent.api.listeners import peer_credentials, systemd_listeners
    sockets = systemd_listeners().api
    left = [k for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES") if k in os.environ]
    conn, _ = sockets[0].accept()
    conn.sendall(json.dumps({
        "count": len(sockets),
        "family": int(sockets[0].family),
        "fileno": sockets[0].fileno(),
        "inheritable": sockets[0].get_inheritable(),
        "env_left": left,
        "peer_pid": peer_credentials(conn)[0],
    }).encode())
    conn.close()
    """
)


# What systemd does between fork and exec: move the socket to fd 3, name our own pid, exec.
HAND_OVER = textwrap.dedent(
    """
    import os, sys
    fd = int(sys.argv[1])
    os.dup2(fd, 3)
    os.close(fd)
    os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="api")
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[2]])
    """
)


def _ask_adopter(path: Path) -> dict:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(str(path))
                client.settimeout(10)
                return json.loads(client.recv(4096))
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _check_adopted(answer: dict) -> None:
    assert answer["count"] == 1
    assert answer["family"] == socket.AF_UNIX
    assert answer["fileno"] == 3
    assert answer["inheritable"] is False
    assert answer["env_left"] == []
    assert answer["peer_pid"] == os.getpid()


def test_socket_activation_fd_adopted_in_child(tmp_path: Path) -> None:
    """Hand a real listening socket over at fd 3 the way systemd does (exec keeps the pid)."""
    path = tmp_path / "agent.sock"
    listener = unix_listener(path, mode=0o660, group=None)
    fd = listener.fileno()
    child = subprocess.Popen([sys.executable, "-c", HAND_OVER, str(fd), ADOPTER], pass_fds=[fd])
    listener.close()  # only the child holds it now
    try:
        _check_adopted(_ask_adopter(path))
    finally:
        assert child.wait(timeout=10) == 0


@pytest.mark.skipif(
    shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate not installed"
)
def test_socket_activation_with_systemd_socket_activate(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    child = subprocess.Popen(
        ["systemd-socket-activate", "-l", str(path), "--fdname=api", sys.executable, "-c", ADOPTER],
        stderr=subprocess.DEVNULL,
    )
    try:
        _check_adopted(_ask_adopter(path))
    finally:
        assert child.wait(timeout=10) == 0


def test_listen_fds_for_another_pid_are_ignored_and_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_FDNAMES", "api")
    assert systemd_listeners() == SystemdSockets()
    assert not {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} & set(os.environ)


def test_no_socket_activation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTEN_PID", raising=False)
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    assert systemd_listeners() == SystemdSockets()


def test_tcp_listener_is_loopback_only() -> None:
    with tcp_listener(0) as sock:
        host, port = sock.getsockname()
        assert host == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            conn, _ = sock.accept()
            conn.close()
        with pytest.raises(ListenerError, match=rf"api\.tcp_port: 127\.0\.0\.1:{port}"):
            tcp_listener(port)


# Child side of the lock tests: try to take the lock, report, optionally hold it until killed.
LOCKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from agent.api.listeners import AlreadyRunning, single_instance_lock
    try:
        with single_instance_lock(Path(sys.argv[1])):
            print("locked", flush=True)
            if sys.argv[2] == "hold":
                time.sleep(60)
    except AlreadyRunning as exc:
        print(exc, flush=True)
        sys.exit(3)
    """
)


def _locker(state_dir: Path, action: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(state_dir), action], stdout=subprocess.PIPE, text=True
    )


def test_second_daemon_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with single_instance_lock(state_dir) as lock_path:
        assert lock_path == state_dir / LOCK_FILE_NAME
        assert lock_path.read_text().strip() == str(os.getpid())
        second = _locker(state_dir, "release")
        out, _ = second.communicate(timeout=10)
        assert second.returncode == 3
        assert f"another pos-agent (pid {os.getpid()}) is running on {state_dir}" in out
    third = _locker(state_dir, "release")
    out, _ = third.communicate(timeout=10)
    assert (third.returncode, out) == (0, "locked\n")


def test_killed_daemon_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = _locker(tmp_path, "hold")
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        with (
            pytest.raises(AlreadyRunning, match=rf"pid {holder.pid}"),
            single_instance_lock(tmp_path),
        ):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()
    with single_instance_lock(tmp_path) as lock_path:
        assert lock_path.read_text().strip() == str(os.getpid())


NAMED = textwrap.dedent(
    """
    import json, os, socket
    from agent.api.listeners import systemd_listeners
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    os.dup2(unix.fileno(), 3)
    os.dup2(tcp.fileno(), 4)
    os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2", LISTEN_FDNAMES="api:metrics")
    passed = systemd_listeners()
    print(json.dumps({
        "api": [int(s.family) for s in passed.api],
        "metrics": [int(s.family) for s in passed.metrics],
    }))
    """
)


def test_the_socket_named_metrics_goes_to_the_metrics_listener() -> None:
    """pos-agent-metrics.socket names its socket `metrics` (FileDescriptorName=): it must never
    be served the local API, whose only authentication is the Unix socket's mode."""
    done = subprocess.run(
        [sys.executable, "-c", NAMED], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(done.stdout) == {
        "api": [int(socket.AF_UNIX)],
        "metrics": [int(socket.AF_INET)],
    }
