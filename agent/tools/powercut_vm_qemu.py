"""One register guest under qemu for `pos-agent powercut`: started warm from a template, cut,
and its state disk read from the host.

A boot under TCG (no usable KVM here) takes half a minute, most of it Python importing the agent;
a cut loses the guest's memory anyway. So the guest is booted once per image to the point where
the agent's modules are imported and nothing of the state disk was ever read (`powercut-zygote`:
/dev/vdb not mounted, the page cache dropped), and saved (qemu's migration to a file: the
template). Each start restores that template with the run's state disk as /dev/vdb and sends
the host's time, the config and the key on the serial line; the guest mounts the disk (ext4
replays its journal), and the daemon starts on it. Kernel, page cache and mount of the state
disk are new at every start; what the disk holds is only what the guest wrote to it. The root
disk is read-only (the template's memory must keep matching it).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from agent.tools.local_stack import free_tcp_port
from agent.tools.powercut_vm_image import GUEST_PORT, GuestImage

TEMPLATE_TIMEOUT_S = 300.0
STATE_ON_DISK = "/state"  # the state directory, on the state disk's own root


def key_in_console(console: Path, key: bytes) -> list[str]:
    """The forms in which the provider's API key shows in the guest's console (its kernel, init
    and the agent's log): as the agent holds it, or as `Qemu.start` sends it on the serial line
    (base64; the guest turns the line's echo off). Empty is the only passing answer."""
    text = console.read_bytes() if console.exists() else b""
    forms = {"the key": key.strip(), "the key as sent (base64)": base64.b64encode(key)}
    return [name for name, form in forms.items() if form and form in text]


class Qemu:
    def __init__(self, image: GuestImage, root: Path, accel: str) -> None:
        self.image = image
        self.root = root
        self.accel = accel
        self.state_disk = root / "state.img"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.console = root / "console.log"
        # A saved guest loads only into the qemu and accelerator that saved it.
        version = subprocess.run(
            ["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=True
        ).stdout
        tag = hashlib.sha256(f"{version}{accel}".encode()).hexdigest()[:8]
        self.template = image.disk.parent / f"template-{tag}.bin"

    def _argv(self, state_disk: Path, port: int) -> list[str]:
        return [
            "qemu-system-x86_64",
            *("-nodefaults", "-display", "none", "-no-reboot"),
            *("-machine", "q35", "-accel", self.accel, "-cpu", "max", "-smp", "2", "-m", "512"),
            *("-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd)),
            *("-append", "console=ttyS0 root=/dev/vda panic=-1 quiet mitigations=off"),
            *("-drive", f"file={self.image.disk},format=raw,if=virtio,readonly=on"),
            *("-drive", f"file={state_disk},format=raw,if=virtio,cache=writeback"),
            *("-serial", "stdio"),
            *("-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:{GUEST_PORT}"),
            *("-device", "virtio-net-pci,netdev=n0"),
        ]

    def new_state_disk(self) -> None:
        subprocess.run(["cp", "--sparse=always", self.image.state, self.state_disk], check=True)

    def make_template(self) -> None:
        """Boot once, wait for the zygote, save the guest to the template file (cached beside
        the image; made again with the image)."""
        if self.template.exists():
            return
        partial = self.template.with_suffix(".partial")
        monitor = self.root / "template-monitor.sock"
        blank = self.root / "template-state.img"
        subprocess.run(["cp", "--sparse=always", self.image.state, blank], check=True)
        log = self.root / "template-console.log"
        with log.open("wb") as console:
            process = subprocess.Popen(
                [
                    *self._argv(blank, free_tcp_port()),
                    "-monitor",
                    f"unix:{monitor},server=on,wait=off",
                ],
                stdin=subprocess.PIPE,
                stdout=console,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_for(log, b"powercut-zygote: ready", process)
            with socket.socket(socket.AF_UNIX) as hmp:
                hmp.connect(str(monitor))
                hmp.settimeout(TEMPLATE_TIMEOUT_S)
                hmp.sendall(f'migrate "exec:cat > {partial}"\n'.encode())
                deadline = time.monotonic() + TEMPLATE_TIMEOUT_S
                seen = b""
                while b"Migration status: completed" not in seen:
                    if time.monotonic() > deadline or b"failed" in seen:
                        raise RuntimeError(f"saving the VM template failed: {seen[-500:]!r}")
                    time.sleep(0.5)
                    hmp.sendall(b"info migrate\n")
                    seen += hmp.recv(65536)
        finally:
            process.kill()
            process.wait()
            blank.unlink(missing_ok=True)
        partial.rename(self.template)

    def _wait_for(self, log: Path, line: bytes, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + TEMPLATE_TIMEOUT_S
        while line not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the VM template did not come up; see {log}")
            time.sleep(0.2)

    def start(self, config: bytes, key: bytes) -> None:
        """Restore the template on the run's state disk and hand it time, config and key."""
        self.port = free_tcp_port()
        with self.console.open("ab") as console:
            self.process = subprocess.Popen(
                [*self._argv(self.state_disk, self.port), "-incoming", f"exec:cat {self.template}"],
                stdin=subprocess.PIPE,
                stdout=console,
                stderr=subprocess.STDOUT,
            )
        assert self.process.stdin is not None
        line = f"go {time.time():.3f} {base64.b64encode(config).decode()} {base64.b64encode(key).decode()}\n"
        self.process.stdin.write(line.encode())
        self.process.stdin.flush()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cut(self) -> None:
        """The plug: SIGKILL, nothing of the guest's memory reaches the disk image."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)

    def wait_dead(self) -> None:
        if self.process is not None:
            self.process.wait()
            if self.process.stdin is not None:
                self.process.stdin.close()

    def survived(self, target: Path) -> int:
        """The state directory as the next start finds it, copied to `target`/state: e2fsck
        replays the journal (its exit code: 0 clean, 1 repaired, 4+ not repaired), then
        debugfs copies it out unmounted."""
        fsck = subprocess.run(
            ["e2fsck", "-fy", str(self.state_disk)], capture_output=True, text=True, check=False
        )
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        subprocess.run(
            ["debugfs", "-R", f"rdump {STATE_ON_DISK} {target}", str(self.state_disk)],
            capture_output=True,
            check=True,
        )
        return fsck.returncode
