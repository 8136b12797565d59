"""The VM guest's initramfs (`agent/tools/powercut_vm_image.py`) without root or qemu: the cpio
the kernel unpacks, read back by a newc reader of the test's own, and the modules' load order
(a module after what it depends on, a built-in one left out). The smoke in
tests/tools/test_powercut_vm.py boots the real thing."""

from __future__ import annotations

import gzip
from pathlib import Path

from agent.tools.powercut_vm_image import _initramfs, _modules


def _entries(archive: bytes) -> list[tuple[str, int, tuple[int, int], bytes]]:
    data = gzip.decompress(archive)
    entries, at = [], 0
    while True:
        assert data[at : at + 6] == b"070701", at
        fields = [int(data[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, name_size = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        name_at = at + 110
        name = data[name_at : name_at + name_size - 1].decode()
        assert data[name_at + name_size - 1] == 0
        body_at = name_at + name_size + (-(name_at + name_size) % 4)
        if name == "TRAILER!!!":
            assert not data[body_at:].strip(b"\0")
            return entries
        entries.append((name, mode, rdev, data[body_at : body_at + size]))
        at = body_at + size + (-(body_at + size) % 4)


def test_the_initramfs_holds_init_busybox_the_console_and_the_modules_in_order() -> None:
    archive = _initramfs(b"\x7fELF busybox", [("virtio.ko", b"v" * 5), ("ext4.ko", b"e" * 7)])

    entries = {name: (mode, rdev, body) for name, mode, rdev, body in _entries(archive)}

    assert entries["init"][0] == 0o100755
    assert entries["init"][2].startswith(b"#!/bin/busybox sh\n")
    assert b"switch_root /newroot /usr/local/sbin/powercut-guest" in entries["init"][2]
    assert entries["bin/busybox"] == (0o100755, (0, 0), b"\x7fELF busybox")
    assert entries["dev/console"][:2] == (0o020600, (5, 1))
    assert entries["modules/order"][2] == b"virtio.ko\next4.ko\n"
    assert entries["modules/virtio.ko"][2] == b"vvvvv"
    assert entries["modules/ext4.ko"][2] == b"eeeeeee"
    for directory in ("bin", "dev", "proc", "sys", "newroot", "modules"):
        assert entries[directory][0] == 0o040755


def test_modules_load_after_what_they_depend_on(tmp_path: Path) -> None:
    def module(path: str, depends: str) -> None:
        ko = tmp_path / "kernel" / path
        ko.parent.mkdir(parents=True, exist_ok=True)
        ko.write_bytes(b"\0license=GPL\0depends=" + depends.encode() + b"\0name=x\0")

    module("drivers/virtio/virtio_pci.ko", "virtio,virtio_ring,virtio_pci_modern_dev")
    module("drivers/virtio/virtio_ring.ko", "virtio")
    module("drivers/virtio/virtio.ko", "")
    module("drivers/virtio/virtio_pci_modern_dev.ko", "")
    module("drivers/block/virtio_blk.ko", "virtio,virtio_ring")
    module("drivers/net/virtio_net.ko", "net_failover,virtio,virtio_ring")
    module("drivers/net/net_failover.ko", "failover")
    module("net/core/failover.ko", "")
    module("crypto/crc32c_generic.ko", "")
    module("fs/ext4/ext4.ko", "mbcache,jbd2,crc16")  # crc16 built in here: no file
    module("fs/jbd2/jbd2.ko", "")
    module("fs/mbcache.ko", "")

    order = [name for name, _ in _modules(tmp_path)]

    assert sorted(order) == sorted(
        f"{name}.ko"
        for name in (
            "virtio_pci",
            "virtio_ring",
            "virtio",
            "virtio_pci_modern_dev",
            "virtio_blk",
            "virtio_net",
            "net_failover",
            "failover",
            "crc32c_generic",
            "ext4",
            "jbd2",
            "mbcache",
        )
    )
    for before, after in (
        ("virtio", "virtio_ring"),
        ("virtio_ring", "virtio_pci"),
        ("virtio_pci_modern_dev", "virtio_pci"),
        ("failover", "net_failover"),
        ("net_failover", "virtio_net"),
        ("jbd2", "ext4"),
        ("mbcache", "ext4"),
    ):
        assert order.index(f"{before}.ko") < order.index(f"{after}.ko"), (before, after, order)
