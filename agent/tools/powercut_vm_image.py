"""The guest of `pos-agent powercut`'s VM layer: a Debian 12 register built from our .deb.

Three parts, each cached under build/vm/ and made only when missing:
- the kernel: Debian's `linux-image-amd64` (its vmlinuz, unpacked, never installed) and a small
  initramfs of our own (static busybox, the virtio and ext4 modules, an /init that mounts
  /dev/vda and hands over to the register's init): the stock initramfs-tools one would wait for
  udev and a full boot;
- the root: the minimal Debian root of the systemd tests (`base_root`, build/register/debian12)
  copied, with socat (the till's port into the guest) and iproute2;
- the image: that root with the package installed by dpkg as on a register (`make deb`,
  rebuilt when a source is newer than it) and `powercut-guest` as init, packed by
  `mkfs.ext4 -d`, and a blank ext4 state disk. It is named by a hash of the package's sources,
  so a change to the agent makes a new one.

`powercut-guest` (PID 1, no systemd) mounts, brings up qemu's user network (the host is
10.0.2.2), starts socat from TCP 8080 to the agent's Unix socket and hands over to
`powercut-zygote`: the agent's modules imported, it waits on the serial line for the host's
time, config and key (kept on tmpfs: a register's config is not what a power cut tests), then
mounts the state disk at /var/lib/powercut and runs `pos-agent run`. The root is read-only; the
state directory /var/lib/powercut/state is on the disk the cuts hit.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

DEBIAN_SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What pos-agent's Depends need, plus systemd booted as PID 1 (dbus for systemctl/logind).
INCLUDE = "systemd,systemd-sysv,dbus,python3,libusb-1.0-0"
GUEST_EXTRAS = ("socat", "iproute2")
IMAGE_SIZE = "1200M"
GUEST_PORT = 8080  # socat in the guest: TCP here → the agent's Unix socket
GUEST_MOUNT = "/var/lib/powercut"  # the state disk (/dev/vdb), the one the cuts hit
GUEST_STATE = f"{GUEST_MOUNT}/state"
GUEST_RUN = "/run/powercut"  # config, key and socket: tmpfs, from fw_cfg at each boot
GUEST_INIT = "/usr/local/sbin/powercut-guest"
GUEST_ZYGOTE = "/usr/local/sbin/powercut-zygote"
STATE_DISK_SIZE = "256M"
MODULES = (
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "crc32c_generic",
    "ext4",
)
SOURCES = ("agent", "offline_store", "printers", "pyproject.toml", "packaging/deb")

INITRAMFS_INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do insmod "/modules/$module"; done < /modules/order
tries=0
while [ ! -b /dev/vda ] && [ $tries -lt 400 ]; do sleep 0.05; tries=$((tries + 1)); done
if ! mount -t ext4 -o ro /dev/vda /newroot; then
    echo "powercut-initramfs: cannot mount /dev/vda"
    echo 1 > /proc/sys/kernel/sysrq; echo o > /proc/sysrq-trigger
fi
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot {GUEST_INIT}
"""

GUEST_INIT_SCRIPT = f"""#!/bin/sh
# PID 1 of the power-cut register: no systemd; the agent's start waits in powercut-zygote.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root
# As the unit sets it: python-escpos keeps its parsed printer database there (made at build).
export ESCPOS_CAPABILITIES_PICKLE_DIR=/var/cache/pos-agent
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs tmpfs /tmp
echo 1 > /proc/sys/kernel/sysrq
mkdir -p {GUEST_RUN}/run
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
socat TCP-LISTEN:{GUEST_PORT},fork,reuseaddr UNIX-CONNECT:{GUEST_RUN}/run/agent.sock &
stty -F /dev/ttyS0 -echo
/opt/pos-agent/venv/bin/python3 {GUEST_ZYGOTE} < /dev/ttyS0
echo "powercut-guest: pos-agent exited $?"
echo o > /proc/sysrq-trigger
sleep 60
"""

# The agent's modules imported, then a wait on the serial line: the template is saved here.
# Each run restores it and sends one line: the host's time, the config and the key (base64),
# then the state disk is mounted (ext4 replays its journal) and the daemon runs on it.
GUEST_ZYGOTE_SCRIPT = f"""import base64, os, subprocess, sys, time
import agent.daemon.main
from agent.cli import main

with open("/proc/sys/vm/drop_caches", "w") as caches:  # nothing of /dev/vdb kept in memory
    caches.write("3\\n")
print("powercut-zygote: ready", flush=True)
_, epoch, config, key = sys.stdin.readline().split()
time.clock_settime(time.CLOCK_REALTIME, float(epoch))
with open("{GUEST_RUN}/pos-agent.toml", "wb") as out:
    out.write(base64.b64decode(config))
with open(os.open("{GUEST_RUN}/provider-api-key", os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
    out.write(base64.b64decode(key))
subprocess.run(["mount", "-t", "ext4", "-o", "noatime", "/dev/vdb", "{GUEST_MOUNT}"], check=True)
os.makedirs("{GUEST_STATE}", exist_ok=True)
print("powercut-zygote: starting pos-agent", flush=True)
sys.exit(main(["run", "--config", "{GUEST_RUN}/pos-agent.toml"]))
"""


@dataclass(frozen=True)
class GuestImage:
    """What qemu boots: kernel and initramfs, the root disk (read-only) and a blank state
    disk (copied for each run)."""

    kernel: Path
    initrd: Path
    disk: Path
    state: Path


Log = Callable[[str], None]


def missing_tools() -> list[str]:
    tools = ("qemu-system-x86_64", "debootstrap", "mkfs.ext4", "e2fsck", "debugfs", "dpkg-deb")
    return [tool for tool in tools if shutil.which(tool) is None]


def base_root(cache: Path) -> Path:
    """The cached minimal Debian 12 root, made on first use (about a minute and a half)."""
    root = cache / "debian12"
    if (root / "usr/bin/python3").exists():
        return root
    partial = cache / "debian12.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", DEBIAN_SUITE, partial, MIRROR],
        check=True,
        capture_output=True,
        timeout=900,
    )
    partial.rename(root)
    return root


def guest_image(repo: Path, build: Path, log: Log) -> GuestImage:
    """The image for the sources in `repo`, built under `build`/vm when missing."""
    vm = build / "vm"
    vm.mkdir(parents=True, exist_ok=True)
    image = vm / f"image-{_sources_hash(repo)}"
    done = GuestImage(
        image / "vmlinuz", image / "initrd.img", image / "register.img", image / "state.img"
    )
    if done.disk.exists():
        return done
    kernel_dir = _kernel(vm, build, log)
    deb = _package(repo, build, log)
    root = _guest_root(vm, build, log)
    log(f"image: installing {deb.name} and packing the disk")
    partial = image.with_name(image.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    stage = partial / "root"
    partial.mkdir(parents=True)
    _copy_tree(root, stage)
    shutil.copy(deb, stage / "root/pos-agent.deb")
    _run(["mount", "-t", "proc", "proc", stage / "proc"])  # systemd-tmpfiles needs it
    try:
        _chroot(stage, "dpkg", "-i", "/root/pos-agent.deb")
    finally:
        _run(["umount", stage / "proc"])
    (stage / "root/pos-agent.deb").unlink()
    for path, text in ((GUEST_INIT, GUEST_INIT_SCRIPT), (GUEST_ZYGOTE, GUEST_ZYGOTE_SCRIPT)):
        script = stage / path.lstrip("/")
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(text)
        script.chmod(0o755)
    (stage / GUEST_MOUNT.lstrip("/")).mkdir(parents=True, exist_ok=True)
    pickle_dir = "ESCPOS_CAPABILITIES_PICKLE_DIR=/var/cache/pos-agent"  # read-only at run
    (stage / "var/cache/pos-agent").mkdir(parents=True, exist_ok=True)
    python = "/opt/pos-agent/venv/bin/python3"
    _chroot(stage, pickle_dir, python, "-c", "import escpos.capabilities")
    _run(["mkfs.ext4", "-q", "-F", "-L", "state", partial / "state.img", STATE_DISK_SIZE])
    disk = partial / "register.img"
    _run(["mkfs.ext4", "-q", "-F", "-L", "register", "-d", stage, disk, IMAGE_SIZE])
    shutil.rmtree(stage)
    shutil.copy(kernel_dir / "vmlinuz", partial / "vmlinuz")
    shutil.copy(kernel_dir / "initrd.img", partial / "initrd.img")
    for old in (p for p in vm.glob("image-*") if p != partial):
        shutil.rmtree(old, ignore_errors=True)
    partial.rename(image)
    return done


def _sources_hash(repo: Path) -> str:
    digest = hashlib.sha256((GUEST_INIT_SCRIPT + GUEST_ZYGOTE_SCRIPT + INITRAMFS_INIT).encode())
    for path in sorted(_source_files(repo)):
        digest.update(str(path.relative_to(repo)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _source_files(repo: Path) -> Iterable[Path]:
    for name in SOURCES:
        top = repo / name
        if top.is_file():
            yield top
            continue
        for path in top.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                yield path


def _package(repo: Path, build: Path, log: Log) -> Path:
    """build/pos-agent_<version>_<arch>.deb as `make deb` makes it, unless one newer than every
    source is there (the systemd tests build the same one)."""
    version = re.search(r'^version = "(.*)"$', (repo / "pyproject.toml").read_text(), re.M)
    assert version is not None, "pyproject.toml has no version"
    arch = _output(["dpkg", "--print-architecture"]).strip()
    deb = build / f"pos-agent_{version.group(1)}_{arch}.deb"
    newest = max(path.stat().st_mtime for path in _source_files(repo))
    if deb.exists() and deb.stat().st_mtime > newest:
        return deb
    log(f"image: building {deb.name} (packaging/deb/build)")
    _run([repo / "packaging/deb/build", version.group(1), build])
    return deb


def _guest_root(vm: Path, build: Path, log: Log) -> Path:
    """The base root plus socat and iproute2 (not the package)."""
    root = vm / "root"
    if (root / "usr/bin/socat").exists():
        return root
    base = base_root(build / "register")
    log("image: the guest root (base root + socat, iproute2)")
    partial = vm / "root.partial"
    shutil.rmtree(partial, ignore_errors=True)
    _copy_tree(base, partial)
    shutil.copy("/etc/resolv.conf", partial / "etc/resolv.conf")
    _chroot(partial, "apt-get", "update", "-q")
    _chroot(partial, "apt-get", "install", "-q", "-y", "--no-install-recommends", *GUEST_EXTRAS)
    _chroot(partial, "apt-get", "clean")
    for lists in (partial / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
    partial.rename(root)
    return root


def _kernel(vm: Path, build: Path, log: Log) -> Path:
    """vmlinuz and our initramfs from Debian's linux-image-amd64 and busybox-static."""
    kernel = vm / "kernel"
    if (kernel / "initrd.img").exists():
        return kernel
    log("image: the kernel and a small initramfs (linux-image-amd64, busybox-static)")
    root = _guest_root(vm, build, log)
    partial = vm / "kernel.partial"
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "debs").mkdir(parents=True)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    _chroot(root, "apt-get", "update", "-q")
    depends = _output(["chroot", root, "apt-cache", "depends", "linux-image-amd64"])
    image = re.search(r"Depends: (linux-image-\S+)", depends)
    assert image is not None, depends
    download = "cd /tmp && apt-get download -q " + image.group(1) + " busybox-static"
    _chroot(root, "sh", "-c", download)
    for deb in (root / "tmp").glob("*.deb"):
        _run(["dpkg-deb", "-x", deb, partial / "debs"])
        deb.unlink()
    for lists in (root / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
    unpacked = partial / "debs"
    vmlinuz = next((unpacked / "boot").glob("vmlinuz-*"))
    shutil.copy(vmlinuz, partial / "vmlinuz")
    modules_dir = next((unpacked / "lib/modules").iterdir())
    busybox = (unpacked / "bin/busybox").read_bytes()
    (partial / "initrd.img").write_bytes(_initramfs(busybox, _modules(modules_dir)))
    shutil.rmtree(unpacked)
    partial.rename(kernel)
    return kernel


def _modules(modules_dir: Path) -> list[tuple[str, bytes]]:
    """MODULES and what they depend on (from each .ko's `depends=`), dependencies first."""
    by_name = {ko.stem.replace("-", "_"): ko for ko in modules_dir.rglob("*.ko")}
    order: list[str] = []

    def add(name: str) -> None:
        if name in order or name not in by_name:  # not a module: built in
            return
        found = re.search(rb"depends=([\w,-]*)\0", by_name[name].read_bytes())
        for dependency in found.group(1).decode().split(",") if found else ():
            if dependency:
                add(dependency.replace("-", "_"))
        order.append(name)

    for module in MODULES:
        add(module)
    return [(f"{name}.ko", by_name[name].read_bytes()) for name in order]


def _initramfs(busybox: bytes, modules: list[tuple[str, bytes]]) -> bytes:
    """A gzipped cpio (newc) archive: /init, /bin/busybox, /modules/*, /dev/console."""
    archive = _Cpio()
    for directory in ("bin", "dev", "proc", "sys", "newroot", "modules"):
        archive.add(directory, 0o040755, b"")
    archive.add("dev/console", 0o020600, b"", rdev=(5, 1))
    archive.add("bin/busybox", 0o100755, busybox)
    archive.add("init", 0o100755, INITRAMFS_INIT.encode())
    order = "".join(f"{name}\n" for name, _ in modules).encode()
    archive.add("modules/order", 0o100644, order)
    for name, data in modules:
        archive.add(f"modules/{name}", 0o100644, data)
    return gzip.compress(archive.close(), compresslevel=6)


class _Cpio:
    """The newc format the kernel unpacks (no cpio binary on a minimal host)."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.inode = 1

    def add(self, name: str, mode: int, data: bytes, rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = (self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, *rdev, len(encoded), 0)
        self.out.write(b"070701" + b"".join(b"%08X" % value for value in fields) + encoded)
        self._pad()
        self.out.write(data)
        self._pad()
        self.inode += 1

    def _pad(self) -> None:
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def close(self) -> bytes:
        self.inode = 0
        self.add("TRAILER!!!", 0, b"")
        return self.out.getvalue()


def _copy_tree(source: Path, target: Path) -> None:
    _run(["cp", "-a", "--reflink=auto", source, target])


def _chroot(root: Path, *argv: str) -> None:
    env = "/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"
    _run(["chroot", root, *env.split(), "DEBIAN_FRONTEND=noninteractive", *argv])


def _run(argv: list[str | Path]) -> None:
    completed = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=900, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, argv))} exited {completed.returncode}: "
            f"{(completed.stderr or completed.stdout)[-2000:]}"
        )


def _output(argv: list[str | Path]) -> str:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=120, check=True
    ).stdout
