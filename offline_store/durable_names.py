"""A file's name is durable only once its directory is: after creating, renaming or replacing a
file (or a directory), the directory holding the name is fsynced, or a power cut can take the
name back with everything the file held."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(path: Path) -> None:
    """The names in directory `path` (new, renamed or removed) made durable."""
    directory = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def make_durable_dir(path: Path) -> None:
    """The directory, created if missing with each new name synced in its parent: without it a
    power cut after the seal's commit took back the new directory and every sealed file in it."""
    missing = [directory for directory in (path, *path.parents) if not directory.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        fsync_directory(created.parent)
