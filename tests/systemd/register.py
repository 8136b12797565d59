"""A booted Debian 12 register for tests: debootstrap once (cached), systemd-nspawn -b per run.

The base root is made by `debootstrap --variant=minbase` with what the package depends on and
cached under build/register/debian12 (a second run starts in seconds). Each run boots it with
`--volatile=overlay`: the root is read-only underneath a tmpfs, so the cache never sees the
package, and nothing is left to clean but the nspawn process. `--register=no --keep-unit`
because this machine may have no machined (and no systemd as PID 1): commands run in the
container through `nsenter -t <its PID 1> -a`. The container shares the host's network, so a
sandbox provider on the host's 127.0.0.1 serves it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_TIMEOUT_S = 60.0
POLL_S = 0.1
T = TypeVar("T")


def missing_tools() -> list[str]:
    return [t for t in ("debootstrap", "systemd-nspawn", "nsenter") if shutil.which(t) is None]


@dataclass
class Register:
    """One booted container; `run` executes a command inside it (as root or as `user`)."""

    root: Path
    share: Path  # the host directory seen read-only at /mnt/share inside
    process: subprocess.Popen[bytes] | None = None
    pid1: int = 0
    console: Path = field(default_factory=Path)

    def boot(self) -> None:
        self.console = self.share.parent / "console.log"
        with self.console.open("wb") as console:
            self.process = subprocess.Popen(
                [
                    "systemd-nspawn",
                    "--register=no",
                    "--keep-unit",
                    "--quiet",
                    "--volatile=overlay",
                    f"--bind-ro={self.share}:/mnt/share",
                    "-D",
                    str(self.root),
                    "-b",
                ],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid1 = self._wait(self._container_init, "the container's PID 1")
        self._wait(self._booted, "the container to finish booting")

    def _container_init(self) -> int | None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"systemd-nspawn exited; see {self.console}")
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = children.read_text().split()
        return int(pids[0]) if pids else None

    def _booted(self) -> bool:
        state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
        return state in ("running", "degraded")

    def _wait(self, check: Callable[[], T | None], what: str) -> T:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(POLL_S)
        raise RuntimeError(f"timed out waiting for {what}; see {self.console}")

    def command(self, *argv: str, user: str | None = None) -> list[str]:
        """The host argv that runs `argv` inside, with a clean environment."""
        prefix = ["nsenter", "-t", str(self.pid1), "-a", "--"]
        env = ["/usr/bin/env", "-i", f"PATH={PATH}", "LANG=C.UTF-8", "HOME=/root"]
        as_user = ["/usr/sbin/runuser", "-u", user, "--"] if user else []
        return [*prefix, *env, *as_user, *argv]

    def run(
        self,
        *argv: str,
        user: str | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*argv, user=user),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def shutdown(self) -> None:
        """SIGTERM (nspawn powers the container off), then SIGKILL to the whole session."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            # The container's PID 1 takes its whole PID namespace (and mounts) with it.
            for pid in (self.pid1, self.process.pid):
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            self.process.wait(timeout=20)
