"""The power-cut filesystem's model (`agent/tools/powercut_fs.py`) without the kernel: what a cut
keeps is exactly what was synced, file data by fsync and names by the directory's fsync."""

from __future__ import annotations

import errno
import stat

import pytest

from agent.tools.powercut_fs import Node, PowercutFs


def _file(fs: PowercutFs, parent: Node, name: str) -> Node:
    node = fs.new_node(False, stat.S_IFREG | 0o644)
    parent.entries[name] = node.ino
    return node


def test_unsynced_data_is_gone_and_synced_data_stays() -> None:
    fs = PowercutFs(seed=1)
    root = fs.lookup("/")
    node = _file(fs, root, "db")
    root.durable_entries = dict(root.entries)
    node.write(0, b"committed")
    node.sync()
    node.write(9, b"+unsynced")
    node.truncate(4)

    report = fs.cut("control", torn=False)

    assert bytes(fs.lookup("/db").data) == b"committed"
    assert report.lost_bytes == len(b"+unsynced")


def test_a_name_lives_only_once_its_directory_is_synced() -> None:
    fs = PowercutFs(seed=1)
    root = fs.lookup("/")
    kept = _file(fs, root, "kept")
    kept.write(0, b"data")
    kept.sync()
    root.durable_entries = dict(root.entries)
    synced_only = _file(fs, root, "new")  # data synced, its directory never
    synced_only.write(0, b"x")
    synced_only.sync()
    root.entries["renamed"] = root.entries.pop("kept")

    fs.cut("control", torn=False)

    assert sorted(root.entries) == ["kept"]  # the rename and the create are undone
    assert bytes(fs.lookup("/kept").data) == b"data"
    assert synced_only.ino not in fs.nodes


def test_a_name_synced_without_its_data_comes_back_empty() -> None:
    """As ext4 gives back a file written without fsync after a real cut: 0 bytes."""
    fs = PowercutFs(seed=1)
    root = fs.lookup("/")
    node = _file(fs, root, "mark")
    node.write(0, b"never synced")
    root.durable_entries = dict(root.entries)

    fs.cut("control", torn=False)

    assert bytes(fs.lookup("/mark").data) == b""


def test_a_torn_cut_keeps_some_unsynced_sectors_and_no_other_bytes() -> None:
    fs = PowercutFs(seed=3)
    root = fs.lookup("/")
    node = _file(fs, root, "wal")
    root.durable_entries = dict(root.entries)
    sectors = [bytes([n]) * 512 for n in range(1, 41)]
    for index, sector in enumerate(sectors):
        node.write(index * 512, sector)

    fs.cut("control", torn=True)

    data = bytes(fs.lookup("/wal").data)
    kept = [data[i * 512 : (i + 1) * 512] for i in range(len(data) // 512)]
    assert 0 < sum(piece == sectors[i] for i, piece in enumerate(kept)) < len(sectors)
    assert all(piece in (sectors[i], bytes(512)) for i, piece in enumerate(kept))


def test_after_a_cut_every_call_fails_until_the_power_is_back() -> None:
    fs = PowercutFs(seed=1)
    fs.control({"op": "arm", "after": 2, "victims": []})
    fs.enter("write")
    with pytest.raises(OSError) as cut:
        fs.enter("fsync")  # the armed call: the power never finished it
    assert cut.value.errno == errno.EIO
    with pytest.raises(OSError):
        fs.enter("read")
    state = fs.control({"op": "resume"})
    assert state["frozen"] is False and state["cuts"] == 1
    assert state["last_cut"]["at_op"] == "fsync"
    fs.enter("read")
