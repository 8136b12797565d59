"""The sockets the local API listens on, and the guard that keeps one daemon per register.

Access to the Unix socket is the authentication (mode 0660, group `pos`), so the socket is bound
under a tight umask and only then opened up to its final mode: there is no moment in which
anyone else can connect. Sockets passed by systemd socket activation are adopted as they are.
"""

from __future__ import annotations

import errno
import fcntl
import grp
import os
import socket
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SD_LISTEN_FDS_START = 3
LOCK_FILE_NAME = "pos-agent.lock"
_PEERCRED = struct.Struct("3i")  # struct ucred: pid_t pid; uid_t uid; gid_t gid


class AlreadyRunning(Exception):
    """Another pos-agent owns the socket or the state directory; two would fight over SQLite."""


class ListenerError(Exception):
    """The socket cannot be set up as configured; the message names the config key to fix."""


def unix_listener(path: Path, *, mode: int, group: str | None) -> socket.socket:
    """Bind and listen on `path` with `mode` and `group`; replace a stale socket file left by a crash.

    Call it after `single_instance_lock`: the stale-socket probe and the bind are not atomic.
    A parent directory created here is 0755: the socket's own mode is what gates access.
    """
    gid = _group_id(group)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        previous_umask = os.umask(0o177)  # the socket is born 0600, owner only
        try:
            sock.bind(os.fspath(path))
        finally:
            os.umask(previous_umask)
        try:
            _give_to_group(path, gid, group)
            os.chmod(path, mode)
            sock.listen()
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    except BaseException:
        sock.close()
        raise
    return sock


def _group_id(group: str | None) -> int | None:
    if group is None:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ListenerError(
            f"api.socket_group: group {group!r} does not exist on this system; create it "
            f"(systemd-sysusers pos-agent.sysusers, or groupadd --system {group}) "
            f"or change api.socket_group"
        ) from None


def _give_to_group(path: Path, gid: int | None, group: str | None) -> None:
    """chgrp only when needed: an unprivileged daemon may only pick one of its own groups, and the
    shipped unit forbids chown(2) entirely (SystemCallFilter=~@privileged)."""
    if gid is None or path.stat().st_gid == gid:
        return
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        raise ListenerError(
            f"api.socket_group: cannot give {path} to group {group!r}: the daemon's user is not "
            f"a member (SupplementaryGroups= in the unit) and is not root"
        ) from None


def _remove_stale_socket(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ListenerError(
            f"api.socket_path: {path} exists and is not a socket; refusing to replace it"
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(os.fspath(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)  # nobody listens: left behind by a crash
            return
        except TimeoutError:
            pass  # listening but its backlog is full: very much alive
        except PermissionError:
            raise ListenerError(
                f"api.socket_path: {path} belongs to someone else and we may not connect to it"
            ) from None
    raise AlreadyRunning(
        f"something already answers on {path} (another pos-agent, or the pos-agent.socket unit); "
        f"stop it first: systemctl stop pos-agent.socket pos-agent.service"
    )


METRICS_FD_NAME = "metrics"


@dataclass
class SystemdSockets:
    """What systemd passed: the metrics socket is the one named `metrics`
    (`FileDescriptorName=` in pos-agent-metrics.socket); every other one is the API's."""

    api: list[socket.socket] = field(default_factory=list)
    metrics: list[socket.socket] = field(default_factory=list)


def systemd_listeners() -> SystemdSockets:
    """Adopt the sockets systemd passed (sd_listen_fds(3)); empty when not socket-activated.

    The variables are removed in every case so that a child process never mistakes our
    sockets for its own.
    """
    listen_pid = os.environ.pop("LISTEN_PID", "")
    listen_fds = os.environ.pop("LISTEN_FDS", "")
    names = os.environ.pop("LISTEN_FDNAMES", "").split(":")
    passed = SystemdSockets()
    try:
        if int(listen_pid) != os.getpid():
            return passed
        count = int(listen_fds)
    except ValueError:
        return passed
    for index, fd in enumerate(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)):
        os.set_inheritable(fd, False)
        name = names[index] if index < len(names) else ""
        target = passed.metrics if name == METRICS_FD_NAME else passed.api
        target.append(socket.socket(fileno=fd))
    return passed


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process on the other end of a Unix socket, for the audit log."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    pid, uid, gid = _PEERCRED.unpack(raw)
    return pid, uid, gid


def tcp_listener(port: int) -> socket.socket:
    """Listen on 127.0.0.1:`port` only: the TCP API is for POS software that cannot use Unix
    sockets, never for the shop network."""
    return network_listener("127.0.0.1", port, key="api.tcp_port")


def network_listener(host: str, port: int, *, key: str) -> socket.socket:
    """Listen on `host:port` (IPv4 or IPv6) for the metrics listener; `key` names the config
    key in the error when the address is taken or not one of this machine's."""
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenerError(f"{key}: cannot resolve {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ListenerError(f"{key}: {host}:{port} is already in use") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ListenerError(
                    f"{key}: {host} is not an address of this machine (ip -brief address)"
                ) from None
            if exc.errno == errno.EACCES:
                raise ListenerError(
                    f"{key}: port {port} needs privileges the daemon does not have; use a port "
                    "above 1023"
                ) from None
            raise
        sock.listen()
    except BaseException:
        sock.close()
        raise
    return sock


@contextmanager
def single_instance_lock(state_dir: Path) -> Iterator[Path]:
    """Hold an exclusive flock on `state_dir/pos-agent.lock` for as long as the daemon runs.

    Two daemons on one database end in "database is locked" crash loops; the second one must
    refuse to start instead. The kernel drops the lock when the process dies, so a crash never
    leaves a stale lock behind.
    """
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    lock_path = state_dir / LOCK_FILE_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise AlreadyRunning(
                f"another pos-agent (pid {holder}) is running on {state_dir} "
                f"(it holds {lock_path}); stop it first: systemctl stop pos-agent"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield lock_path
    finally:
        os.close(fd)  # closing the only descriptor releases the flock
