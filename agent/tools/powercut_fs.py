"""A filesystem that forgets what was not synced: the power-cut layer of `pos-agent powercut`.

SIGKILL loses nothing the kernel already holds; a pulled plug loses everything the disk had not
been told to keep. This FUSE filesystem (after Jepsen's LazyFS and SQLite's crash VFS) keeps the
register's state directory in memory with two views of every file and directory:

- what a process sees (`data`, `entries`): every write, create, rename and unlink at once;
- what the disk holds (`durable`, `durable_entries`): a file's data only up to its last
  `fsync`/`fdatasync`, a directory's names only up to its last `fsync` of the directory.

A *cut* kills the register's processes (SIGKILL; a process inside a filesystem call cannot die
before the call is answered, so no call is half done) and then makes every view what the disk
holds: unsynced data is gone, a file created or renamed into a directory that was never synced
is gone or back under its old name, a file whose name was synced but never its data is empty
(as ext4 gives it back after a real cut). A *torn* cut is harsher: each unsynced write, split
into 512-byte sectors, reaches the disk or not at random (disks write back out of order), and
directories still lose every unsynced change. After a cut every call fails with EIO until the
harness says `resume`: a late call of a killed process never lands on what survived.

The cut comes at a chosen count of changing calls (`arm`: "the 37th write, fsync, create,
rename… from now"), so it lands inside SQLite commits, high-water mark writes, archive appends
and renames as often as they occur, or at once (`cut`). Control is a Unix socket beside the
mount speaking one JSON object a line (`PowercutFs.control`).

Files whose name ends in `-shm` (SQLite's WAL index, which SQLite rebuilds after a crash and maps
into memory) are opened through the kernel's page cache so they can be mapped; every other file
is opened with direct I/O, so no read is served from a cache the cut did not drop.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECTOR = 512
CHANGING = frozenset(
    {"write", "truncate", "fallocate", "fsync", "fsyncdir", "create", "mkdir", "unlink"}
    | {"rmdir", "rename"}
)


@dataclass
class Node:
    """A file or directory with what processes see and what the disk holds."""

    ino: int
    is_dir: bool
    mode: int
    data: bytearray = field(default_factory=bytearray)
    durable: bytearray = field(default_factory=bytearray)
    # Unsynced changes in order: (offset, bytes) for a write, (size, None) for a truncate.
    pending: list[tuple[int, bytes | None]] = field(default_factory=list)
    entries: dict[str, int] = field(default_factory=dict)
    durable_entries: dict[str, int] = field(default_factory=dict)
    mtime_ns: int = field(default_factory=time.time_ns)

    def write(self, offset: int, chunk: bytes) -> None:
        end = offset + len(chunk)
        if end > len(self.data):
            self.data.extend(bytes(end - len(self.data)))
        self.data[offset:end] = chunk
        self.pending.append((offset, chunk))
        self.mtime_ns = time.time_ns()

    def truncate(self, size: int) -> None:
        if size < len(self.data):
            del self.data[size:]
        else:
            self.data.extend(bytes(size - len(self.data)))
        self.pending.append((size, None))
        self.mtime_ns = time.time_ns()

    def sync(self) -> None:
        for offset, chunk in self.pending:
            _apply(self.durable, offset, chunk)
        self.pending.clear()

    def forget(self, rng: random.Random | None) -> int:
        """At a cut: what processes see becomes what the disk holds. With `rng` (a torn cut)
        each unsynced sector reaches the disk or not. Returns the bytes lost."""
        lost = sum(len(chunk) if chunk is not None else 0 for _, chunk in self.pending)
        if rng is not None:
            for offset, chunk in self.pending:
                if chunk is None:
                    if rng.random() < 0.5:
                        _apply(self.durable, offset, None)
                    continue
                for start in range(0, len(chunk), SECTOR):
                    if rng.random() < 0.5:
                        piece = chunk[start : start + SECTOR]
                        _apply(self.durable, offset + start, piece)
                        lost -= len(piece)
        self.pending.clear()
        self.data = bytearray(self.durable)
        self.entries = dict(self.durable_entries)
        return lost


def _apply(target: bytearray, offset: int, chunk: bytes | None) -> None:
    if chunk is None:
        if offset < len(target):
            del target[offset:]
        else:
            target.extend(bytes(offset - len(target)))
        return
    end = offset + len(chunk)
    if end > len(target):
        target.extend(bytes(end - len(target)))
    target[offset:end] = chunk


@dataclass
class CutReport:
    """What the last cut took: counts for the harness's report."""

    number: int
    torn: bool
    at_op: str
    lost_bytes: int
    lost_names: int
    killed: list[int]


class Frozen(OSError):
    pass


class PowercutFs:
    """The filesystem's state and its operations (paths are relative to the mount, "/"-rooted).

    One lock serialises every call and the cut, so a cut never lands inside a call."""

    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(f"{seed}:torn")
        root = Node(1, True, stat.S_IFDIR | 0o755)
        self.nodes: dict[int, Node] = {1: root}
        self.handles: dict[int, int] = {}
        self._next_ino = 2
        self._next_fh = 1
        self.frozen = False
        self.ops = 0
        self.changing_ops = 0
        self.armed_at: int | None = None
        self.armed_torn = False
        self.victims: list[int] = []
        self.cuts: list[CutReport] = []

    # -- names ---------------------------------------------------------------------------------

    def lookup(self, path: str) -> Node:
        node = self.nodes[1]
        for part in _parts(path):
            if not node.is_dir or part not in node.entries:
                raise OSError(errno.ENOENT, path)
            node = self.nodes[node.entries[part]]
        return node

    def parent_of(self, path: str) -> tuple[Node, str]:
        parts = _parts(path)
        if not parts:
            raise OSError(errno.EINVAL, path)
        parent = self.lookup("/" + "/".join(parts[:-1]))
        if not parent.is_dir:
            raise OSError(errno.ENOTDIR, path)
        return parent, parts[-1]

    def node_of(self, path: str | None, fh: int | None) -> Node:
        if fh:
            ino = self.handles.get(fh)
            if ino is None or ino not in self.nodes:
                raise OSError(errno.EBADF, "stale handle (a cut came in between)")
            return self.nodes[ino]
        if path is None:
            raise OSError(errno.EBADF, "no path and no handle")
        return self.lookup(path)

    def new_node(self, is_dir: bool, mode: int) -> Node:
        node = Node(self._next_ino, is_dir, mode)
        self.nodes[node.ino] = node
        self._next_ino += 1
        return node

    def open_handle(self, node: Node) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self.handles[fh] = node.ino
        return fh

    # -- the gate every call passes ------------------------------------------------------------

    def enter(self, op: str) -> None:
        """Inside the lock, before the call does anything: refuse while cut, count, and cut
        when the armed count is reached (this call is then the one the power never finished)."""
        if self.frozen:
            raise Frozen(errno.EIO, "the power is off")
        self.ops += 1
        if op not in CHANGING:
            return
        self.changing_ops += 1
        if self.armed_at is not None and self.changing_ops >= self.armed_at:
            self.cut(op, torn=self.armed_torn)
            raise Frozen(errno.EIO, "the power went off")

    def cut(self, op: str, *, torn: bool) -> CutReport:
        """Kill the register, then keep only what the disk holds (see the module docstring)."""
        killed = []
        for pid in self.victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        self.armed_at = None
        self.frozen = True
        rng = self.rng if torn else None
        lost_bytes = 0
        lost_names = 0
        for node in self.nodes.values():
            if node.is_dir:
                lost_names += len(set(node.entries.items()) ^ set(node.durable_entries.items()))
            lost_bytes += node.forget(rng)
        self._drop_unreachable()
        self.handles.clear()
        report = CutReport(len(self.cuts) + 1, torn, op, lost_bytes, lost_names, killed)
        self.cuts.append(report)
        return report

    def _drop_unreachable(self) -> None:
        reachable = {1}
        stack = [1]
        while stack:
            node = self.nodes[stack.pop()]
            for ino in node.entries.values():
                if ino not in reachable and ino in self.nodes:
                    reachable.add(ino)
                    stack.append(ino)
        for ino in list(self.nodes):
            if ino not in reachable:
                del self.nodes[ino]
        for node in self.nodes.values():  # a name whose file was never made durable
            if node.is_dir:
                node.entries = {k: v for k, v in node.entries.items() if v in self.nodes}
                node.durable_entries = dict(node.entries)

    # -- the control socket --------------------------------------------------------------------

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """`arm` {after, torn, victims}, `disarm`, `victims` {victims}, `cut` {torn, victims},
        `resume`, `state`."""
        with self.lock:
            match request.get("op"):
                case "arm":
                    self.armed_at = self.changing_ops + max(1, int(request["after"]))
                    self.armed_torn = bool(request.get("torn", False))
                    self.victims = [int(pid) for pid in request.get("victims", [])]
                case "disarm":
                    self.armed_at = None
                case "victims":
                    self.victims = [int(pid) for pid in request.get("victims", [])]
                case "cut":
                    self.victims = [int(pid) for pid in request.get("victims", self.victims)]
                    self.cut("control", torn=bool(request.get("torn", False)))
                case "resume":
                    self.frozen = False
                case "state":
                    pass
                case other:
                    return {"error": f"unknown op {other!r}"}
            last = self.cuts[-1] if self.cuts else None
            return {
                "frozen": self.frozen,
                "armed": self.armed_at is not None,
                "cuts": len(self.cuts),
                "ops": self.ops,
                "changing_ops": self.changing_ops,
                "last_cut": None if last is None else last.__dict__,
            }


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def serve_control(fs: PowercutFs, path: Path) -> None:
    """One JSON request a line, one JSON answer a line; a thread of its own."""
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)

    def loop() -> None:
        while True:
            conn, _ = server.accept()
            with conn, conn.makefile("rwb") as stream:
                for line in stream:
                    answer = fs.control(json.loads(line))
                    stream.write(json.dumps(answer).encode() + b"\n")
                    stream.flush()

    threading.Thread(target=loop, name="powercut-control", daemon=True).start()
