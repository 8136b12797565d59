"""The kernel side of the power-cut filesystem: `PowercutFs` served through libfuse 3 (mfusepy,
ctypes over Debian's libfuse3-3). Every call takes the filesystem's lock and passes its gate
(`PowercutFs.enter`), so a cut falls between calls, never inside one.

Mounted with no attribute, name or negative-name caching: after a cut the kernel must ask again
what exists. POSIX locks stay in the kernel (no `lock` operation): SQLite's locks work between
the processes of this machine as on any local filesystem.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any

import mfusepy

from agent.tools.powercut_fs import Node, PowercutFs, serve_control

BLOCKS = 1 << 20  # statfs: a 4 GiB disk
MAPPED_SUFFIX = "-shm"


class Operations(mfusepy.Operations):
    use_ns = True
    flag_nopath = False
    flag_nullpath_ok = True

    def __init__(self, fs: PowercutFs) -> None:
        self.fs = fs

    def _gate(self, op: str) -> None:
        self.fs.enter(op)

    # -- setup ---------------------------------------------------------------------------------

    def init_with_config(self, conn_info: Any, config: Any) -> None:
        if config is not None:
            config.entry_timeout = 0
            config.attr_timeout = 0
            config.negative_timeout = 0
            config.hard_remove = 1
            config.use_ino = 1
            config.nullpath_ok = 1

    # -- reading -------------------------------------------------------------------------------

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        with self.fs.lock:
            self._gate("getattr")
            node = self.fs.node_of(path, _fh(fh))
            return _attrs(node)

    def access(self, path: str, amode: int) -> int:
        with self.fs.lock:
            self._gate("access")
            self.fs.lookup(path)
        return 0

    def readdir(self, path: str, fh: Any) -> list[tuple[str, dict[str, int], int]]:
        """With inode numbers: a zero one hides the name from readdir(3)."""
        with self.fs.lock:
            self._gate("readdir")
            node = self.fs.node_of(path, _fh(fh))
            names = [(".", node.ino), ("..", node.ino)]
            names += [(name, ino) for name, ino in node.entries.items()]
            return [
                (name, {"st_ino": ino, "st_mode": self.fs.nodes[ino].mode}, 0)
                for name, ino in names
            ]

    def open(self, path: str, fi: Any) -> int:
        with self.fs.lock:
            self._gate("open")
            node = self.fs.lookup(path)
            if node.is_dir:
                raise OSError(errno.EISDIR, path)
            if fi.flags & os.O_TRUNC and node.data:
                self.fs.enter("truncate")
                node.truncate(0)
            fi.fh = self.fs.open_handle(node)
            fi.direct_io = 0 if path.endswith(MAPPED_SUFFIX) else 1
        return 0

    def opendir(self, path: str) -> int:
        with self.fs.lock:
            self._gate("opendir")
            node = self.fs.lookup(path)
            if not node.is_dir:
                raise OSError(errno.ENOTDIR, path)
            return self.fs.open_handle(node)

    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        with self.fs.lock:
            self._gate("read")
            node = self.fs.node_of(path, _fh(fi))
            return bytes(node.data[offset : offset + size])

    def statfs(self, path: str) -> dict[str, int]:
        with self.fs.lock:
            used = sum(len(node.data) for node in self.fs.nodes.values()) // 4096
        return {
            "f_bsize": 4096,
            "f_frsize": 4096,
            "f_blocks": BLOCKS,
            "f_bfree": BLOCKS - used,
            "f_bavail": BLOCKS - used,
            "f_files": 1 << 16,
            "f_ffree": (1 << 16) - len(self.fs.nodes),
            "f_favail": (1 << 16) - len(self.fs.nodes),
            "f_namemax": 255,
        }

    # -- changing ------------------------------------------------------------------------------

    def create(self, path: str, mode: int, fi: Any) -> int:
        with self.fs.lock:
            self._gate("create")
            parent, name = self.fs.parent_of(path)
            if name in parent.entries:
                node = self.fs.nodes[parent.entries[name]]
            else:
                node = self.fs.new_node(False, stat.S_IFREG | (mode & 0o7777))
                parent.entries[name] = node.ino
                parent.mtime_ns = node.mtime_ns
            fi.fh = self.fs.open_handle(node)
            fi.direct_io = 0 if path.endswith(MAPPED_SUFFIX) else 1
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        with self.fs.lock:
            self._gate("mkdir")
            parent, name = self.fs.parent_of(path)
            if name in parent.entries:
                raise OSError(errno.EEXIST, path)
            node = self.fs.new_node(True, stat.S_IFDIR | (mode & 0o7777))
            parent.entries[name] = node.ino
        return 0

    def write(self, path: str, data: bytes, offset: int, fi: Any) -> int:
        with self.fs.lock:
            self._gate("write")
            self.fs.node_of(path, _fh(fi)).write(offset, data)
        return len(data)

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        with self.fs.lock:
            self._gate("truncate")
            self.fs.node_of(path, _fh(fh)).truncate(length)
        return 0

    def fallocate(self, path: str, mode: int, offset: int, size: int, fi: Any) -> int:
        if mode != 0:
            raise OSError(errno.EOPNOTSUPP, "only plain fallocate")
        with self.fs.lock:
            self._gate("fallocate")
            node = self.fs.node_of(path, _fh(fi))
            if offset + size > len(node.data):
                node.truncate(offset + size)
        return 0

    def fsync(self, path: str, datasync: int, fi: Any) -> int:
        with self.fs.lock:
            self._gate("fsync")
            self.fs.node_of(path, _fh(fi)).sync()
        return 0

    def fsyncdir(self, path: str, datasync: int, fi: Any) -> int:
        with self.fs.lock:
            self._gate("fsyncdir")
            node = self.fs.node_of(path, _fh(fi))
            node.durable_entries = dict(node.entries)
        return 0

    def unlink(self, path: str) -> int:
        with self.fs.lock:
            self._gate("unlink")
            parent, name = self.fs.parent_of(path)
            if name not in parent.entries:
                raise OSError(errno.ENOENT, path)
            del parent.entries[name]
        return 0

    def rmdir(self, path: str) -> int:
        with self.fs.lock:
            self._gate("rmdir")
            parent, name = self.fs.parent_of(path)
            node = self.fs.lookup(path)
            if node.entries:
                raise OSError(errno.ENOTEMPTY, path)
            del parent.entries[name]
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        with self.fs.lock:
            self._gate("rename")
            source, old_name = self.fs.parent_of(old)
            target, new_name = self.fs.parent_of(new)
            if old_name not in source.entries:
                raise OSError(errno.ENOENT, old)
            if flags & 1 and new_name in target.entries:  # RENAME_NOREPLACE
                raise OSError(errno.EEXIST, new)
            if flags & ~1:
                raise OSError(errno.EINVAL, "only RENAME_NOREPLACE")
            target.entries[new_name] = source.entries.pop(old_name)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        with self.fs.lock:
            self._gate("chmod")
            node = self.fs.lookup(path)
            node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        return 0

    def utimens(self, path: str, times: Any = None) -> int:
        return 0

    # -- handles -------------------------------------------------------------------------------

    def flush(self, path: str, fi: Any) -> int:
        return 0

    def release(self, path: str, fi: Any) -> int:
        with self.fs.lock:
            self.fs.handles.pop(_fh(fi) or 0, None)
        return 0

    def releasedir(self, path: str, fh: Any) -> int:
        with self.fs.lock:
            self.fs.handles.pop(_fh(fh) or 0, None)
        return 0


class _Fuse(mfusepy.FUSE):
    """mfusepy drops the file handle of a libfuse 3 truncate (an ftruncate of an open file has
    no path when `nullpath_ok`): pass it on."""

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        fh = int(fip.contents.fh) if fip else None
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        result: int = self.operations.truncate(decoded, length, fh)
        return result


def _fh(fi: Any) -> int | None:
    if fi is None:
        return None
    if isinstance(fi, int):
        return fi
    return int(fi.fh)


def _attrs(node: Node) -> dict[str, Any]:
    size = len(node.data)
    return {
        "st_mode": node.mode,
        "st_ino": node.ino,
        "st_nlink": 2 if node.is_dir else 1,
        "st_size": size,
        "st_blocks": (size + 511) // 512,
        "st_uid": os.getuid(),
        "st_gid": os.getgid(),
        "st_mtime": node.mtime_ns,
        "st_ctime": node.mtime_ns,
        "st_atime": node.mtime_ns,
    }


def mount(fs: PowercutFs, mountpoint: Path) -> None:
    """Serve until unmounted (`fusermount3 -u` or `umount`); one thread for the calls, one
    for the control socket."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    _Fuse(
        Operations(fs),
        str(mountpoint),
        raw_fi=True,
        foreground=True,
        nothreads=True,  # every call takes one lock anyway; libfuse's threaded loop gave up once
        allow_other=True,
        default_permissions=True,
        fsname="powercut",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="the power-cut filesystem (agent/tools/powercut_fs.py)"
    )
    parser.add_argument("mountpoint", type=Path)
    parser.add_argument("--control", type=Path, required=True, help="the control socket")
    parser.add_argument("--seed", type=int, default=1, help="seed for torn cuts")
    parser.add_argument("--debug", action="store_true", help="log every refused call")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr)

    fs = PowercutFs(args.seed)
    serve_control(fs, args.control)
    mount(fs, args.mountpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
