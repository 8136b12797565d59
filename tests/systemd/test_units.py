"""The shipped systemd files, checked with systemd's own tools where they are installed.

`systemd-analyze verify` runs against a throw-away root (`--root`) that holds the host's unit
files, our two units and an executable at the ExecStart= path. In that root nothing is missing, so
verify must print nothing at all: no environmental messages are tolerated. (Run against the
repository instead, it complains that /usr/bin/pos-agent is not executable; that is the only
environmental message, and the root makes it go away.) verify exits 0 even for unknown keys, so
the test checks the output, not only the exit code.
"""

import ctypes
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.config import ApiConfig
from agent.secrets import CREDENTIAL_NAME

UNITS = Path(__file__).resolve().parents[2] / "systemd"
SERVICE = UNITS / "pos-agent.service"
SOCKET = UNITS / "pos-agent.socket"
METRICS_SOCKET = UNITS / "pos-agent-metrics.socket"
UPDATE_UNITS = (UNITS / "pos-agent-update.service", UNITS / "pos-agent-update.timer")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
HOST_UNIT_DIRS = [Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")]
MAX_EXPOSURE = 2.0


def _settings(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) in file order; keys may repeat, which configparser cannot express."""
    found = []
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        else:
            key, _, value = line.partition("=")
            found.append((section, key, value))
    return found


def _values(path: Path, key: str) -> list[str]:
    return [value for _, k, value in _settings(path) if k == key]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def _verify_root(tmp_path: Path, service_text: str) -> Path:
    host_units = next((d for d in HOST_UNIT_DIRS if (d / "sysinit.target").exists()), None)
    if host_units is None:
        pytest.skip("no host systemd unit directory with sysinit.target to verify against")
    root = tmp_path / "root"
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / SERVICE.name).write_text(service_text, encoding="utf-8")
    shutil.copy(SOCKET, units / SOCKET.name)
    shutil.copy(METRICS_SOCKET, units / METRICS_SOCKET.name)
    for unit in UPDATE_UNITS:
        shutil.copy(unit, units / unit.name)
    executable = root / _values(SERVICE, "ExecStart")[0].split()[0].lstrip("/")
    executable.parent.mkdir(parents=True, exist_ok=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    return root


def _verify(root: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    units = root / "etc/systemd/system"
    return _run(
        SYSTEMD_ANALYZE,
        "verify",
        f"--root={root}",
        "--man=no",
        "--generators=no",
        str(units / SERVICE.name),
        str(units / SOCKET.name),
        str(units / METRICS_SOCKET.name),
        *(str(units / unit.name) for unit in UPDATE_UNITS),
    )


@needs_analyze
def test_verify_is_clean(tmp_path: Path) -> None:
    result = _verify(_verify_root(tmp_path, SERVICE.read_text(encoding="utf-8")))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_analyze
def test_verify_would_catch_a_typo(tmp_path: Path) -> None:
    """Proof that the clean result above means something."""
    broken = SERVICE.read_text(encoding="utf-8").replace(
        "ProtectSystem=strict", "ProtectSytem=strict"
    )
    result = _verify(_verify_root(tmp_path, broken))
    assert "Unknown key 'ProtectSytem'" in result.stdout + result.stderr


@needs_analyze
def test_security_exposure_at_most_2() -> None:
    assert SYSTEMD_ANALYZE is not None
    result = _run(SYSTEMD_ANALYZE, "security", "--offline=yes", "--no-pager", str(SERVICE))
    assert result.stderr == ""
    match = re.search(r"Overall exposure level for pos-agent\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout
    failed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("✗")}
    must_hold = {
        "NoNewPrivileges=",
        "ProtectSystem=",
        "ProtectHome=",
        "MemoryDenyWriteExecute=",
        "SystemCallFilter=~@privileged",
        "SystemCallFilter=~@resources",
        "SystemCallArchitectures=",
        "CapabilityBoundingSet=~CAP_SYS_ADMIN",
        "RestrictSUIDSGID=",
        "User=/DynamicUser=",
    }
    assert not must_hold & failed


def test_units_agree_with_config_defaults_and_each_other() -> None:
    api = ApiConfig()
    assert _values(SOCKET, "ListenStream") == [str(api.socket_path)]
    assert _values(SOCKET, "SocketMode") == [f"{api.socket_mode:04o}"]
    assert _values(SOCKET, "SocketGroup") == [api.socket_group]
    assert _values(SOCKET, "Service") == [SERVICE.name]
    assert _values(SERVICE, "Type") == ["notify"]
    assert _values(SERVICE, "WatchdogSec") == ["30"]
    assert [v.split(":")[0] for v in _values(SERVICE, "LoadCredential")] == [CREDENTIAL_NAME]
    assert api.socket_group in _values(SERVICE, "SupplementaryGroups")[0].split()
    # The socket's directory is writable for a daemon that binds it itself, and is not a
    # RuntimeDirectory= (systemd would chown the socket away from group pos).
    assert _values(SERVICE, "ReadWritePaths") == [f"-{api.socket_path.parent}"]
    assert _values(SERVICE, "RuntimeDirectory") == []
    tmpfiles = (UNITS / "pos-agent.tmpfiles").read_text(encoding="utf-8").splitlines()
    run_dir = [
        line.split()
        for line in tmpfiles
        if not line.startswith("#") and f" {api.socket_path.parent} " in line
    ]
    assert run_dir == [["d", str(api.socket_path.parent), "2750", "pos-agent", "pos", "-"]]


@pytest.mark.skipif(
    not (shutil.which("systemd-sysusers") and shutil.which("systemd-tmpfiles")),
    reason="systemd-sysusers/systemd-tmpfiles not installed",
)
@pytest.mark.skipif(os.geteuid() != 0, reason="creating files owned by pos-agent needs root")
def test_sysusers_and_tmpfiles_in_a_scratch_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for directory in ("etc", "usr/lib/sysusers.d", "usr/lib/tmpfiles.d"):
        (root / directory).mkdir(parents=True)
    shutil.copy(UNITS / "pos-agent.sysusers", root / "usr/lib/sysusers.d/pos-agent.conf")
    shutil.copy(UNITS / "pos-agent.tmpfiles", root / "usr/lib/tmpfiles.d/pos-agent.conf")

    sysusers = _run("systemd-sysusers", f"--root={root}", "pos-agent.conf")
    assert sysusers.returncode == 0, sysusers.stderr
    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").open()}
    groups = {line.split(":")[0]: line.strip().split(":") for line in (root / "etc/group").open()}
    assert passwd["pos-agent"][6].strip() in {"/usr/sbin/nologin", "/sbin/nologin"}
    assert groups["pos"][3].split(",") == ["pos-agent"]

    tmpfiles = _run("systemd-tmpfiles", f"--root={root}", "--create", "pos-agent.conf")
    assert (tmpfiles.returncode, tmpfiles.stderr) == (0, "")
    uid, gid = int(passwd["pos-agent"][2]), int(passwd["pos-agent"][3])
    pos_gid = int(groups["pos"][2])
    expected = {
        "etc/pos-agent": (0o750, 0, gid),
        "run/pos-agent": (0o2750, uid, pos_gid),
        "var/lib/pos-agent": (0o750, uid, gid),
    }
    for relative, (mode, owner, group) in expected.items():
        info = (root / relative).stat()
        assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (mode, owner, group), relative


# Everything the daemon loads, plus a ctypes callback, with writable+executable memory refused
# by the kernel (PR_SET_MDWE, Linux >= 6.3) the way MemoryDenyWriteExecute=yes refuses it.
UNDER_MDWE = textwrap.dedent(
    """
    import ctypes, io, mmap, sys
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        sys.exit(77)
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        sys.exit("MDWE is not in force")
    except PermissionError:
        pass
    assert ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)(41) == 42
    import escpos.printer, httptools, httpx, sqlite3, sqlite_utils
    import usb.core, uvicorn
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from PIL import Image
    ec.generate_private_key(ec.SECP256R1()).sign(b"receipt", ec.ECDSA(hashes.SHA256()))
    Image.new("1", (384, 100)).save(io.BytesIO(), "PNG")
    sqlite3.connect(":memory:").execute("select 1")
    import agent.config, agent.api.listeners, agent.daemon.sd_notify
    print("ok")
    """
)


def _kernel_has_mdwe() -> bool:
    # PR_GET_MDWE answers -1 (EINVAL) on kernels without it.
    return ctypes.CDLL(None).prctl(66, 0, 0, 0, 0) >= 0


@pytest.mark.skipif(sys.platform != "linux" or not _kernel_has_mdwe(), reason="no PR_SET_MDWE")
def test_runtime_works_under_memory_deny_write_execute() -> None:
    assert _values(SERVICE, "MemoryDenyWriteExecute") == ["yes"]
    result = _run(sys.executable, "-c", UNDER_MDWE)
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_the_metrics_socket_is_named_for_the_daemon_and_closed_by_default() -> None:
    from agent.api.listeners import METRICS_FD_NAME

    assert _values(METRICS_SOCKET, "FileDescriptorName") == [METRICS_FD_NAME]
    assert _values(METRICS_SOCKET, "Service") == [SERVICE.name]
    assert _values(METRICS_SOCKET, "IPAddressDeny") == ["any"]
    assert _values(METRICS_SOCKET, "IPAddressAllow") == ["localhost"]
    # The service itself filters no addresses (its provider lives on changing addresses).
    assert _values(SERVICE, "IPAddressDeny") == []
