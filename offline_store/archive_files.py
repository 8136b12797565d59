"""The monthly archive files' bytes: one compressed batch appended per seal, read back whole.

A month's file is JSON Lines: xz streams (`.jsonl.xz`), or gzip members in a month begun by an
earlier version (`.jsonl.gz`); each batch is one stream (member) and `xzcat`/`zcat` read the
whole file. What goes into a batch and the seal that makes it count are `offline_store.archive`'s.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from offline_store.durable_names import fsync_directory
from offline_store.errors import StoreError
from offline_store.journal import JournalEntry, canonical_json, entry_hash

XZ_SUFFIX = ".jsonl.xz"
GZIP_SUFFIX = ".jsonl.gz"
# LZMA2 at preset 6 with a 1 MiB dictionary: ~12 MB to write a batch, ~2 MB to read one.
_XZ_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 20}]
_READ_CHUNK = 1 << 20


class ArchiveDamaged(StoreError):
    """An archive file is shorter than sealed, or its rows do not match the journal."""


@dataclass(frozen=True)
class ArchiveBatch:
    """One sealed append to a month file: bytes `offset`..`bytes` of `file`."""

    id: int
    month: str
    file: str
    offset: int
    bytes: int
    sha256: str
    documents: int
    first_id: int | None
    last_id: int | None
    journal_last_seq: int
    journal_last_hash: str
    sealed_at: datetime


def _batch_writer(path: Path, handle: BinaryIO) -> io.BufferedIOBase:
    """One compressed batch appended to `handle`, in the format the file's name says."""
    if path.name.endswith(GZIP_SUFFIX):
        return gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=9, mtime=0)
    return lzma.LZMAFile(handle, "wb", format=lzma.FORMAT_XZ, filters=_XZ_FILTERS)


def append_member(
    path: Path,
    sealed: int,
    header: dict[str, Any],
    records: list[dict[str, Any]],
    journal_rows: list[JournalEntry],
) -> int:
    """Cut an unsealed tail (a crashed earlier attempt), append one batch (an xz stream, or a
    gzip member in a month begun as gzip), fsync; returns the new length."""
    new_file = not path.exists()
    with path.open("ab") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size < sealed:
            raise ArchiveDamaged(f"{path} is {size} bytes, shorter than its sealed {sealed}")
        if size > sealed:
            handle.truncate(sealed)
            handle.seek(sealed)
        with _batch_writer(path, handle) as member:
            _write_line(member, header)
            for record in records:
                _write_line(member, record)
            for entry in journal_rows:
                _write_line(
                    member,
                    {
                        "type": "journal",
                        "seq": entry.seq,
                        "at": entry.at,
                        "document_id": entry.document_id,
                        "event": entry.event,
                        "detail": json.loads(entry.detail),
                    },
                )
        handle.flush()
        os.fsync(handle.fileno())
        end = handle.tell()
    if new_file:
        fsync_directory(path.parent)
    return end


def _write_line(member: io.BufferedIOBase, record: dict[str, Any]) -> None:
    member.write(canonical_json(record).encode("utf-8") + b"\n")


def file_sha256(path: Path, length: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        left = length
        while left:
            chunk = handle.read(min(_READ_CHUNK, left))
            if not chunk:
                raise ArchiveDamaged(f"{path} ends before its sealed length {length}")
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def read_batch(archive_dir: Path, batch: ArchiveBatch, *, check: bool) -> Iterator[dict[str, Any]]:
    path = archive_dir / batch.file
    if check and file_sha256(path, batch.bytes) != batch.sha256:
        raise ArchiveDamaged(f"{path}: the first {batch.bytes} bytes differ from their seal")
    with path.open("rb") as handle:
        handle.seek(batch.offset)
        member = handle.read(batch.bytes - batch.offset)
    try:
        data = (
            gzip.decompress(member)
            if batch.file.endswith(GZIP_SUFFIX)
            else lzma.decompress(member, format=lzma.FORMAT_XZ)
        )
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise ArchiveDamaged(f"{path}: batch {batch.id} does not decompress: {exc}") from exc
    for line in data.splitlines():
        yield json.loads(line)


def chained_records(
    archive_dir: Path, batch: ArchiveBatch, seq: int, prev_hash: str
) -> Iterator[dict[str, Any]]:
    """The batch's records, its bytes checked against the seal and its journal segment against
    the chain: from entry `seq` with hash `prev_hash` (the previous batch's end) to the seq and
    hash sealed for this batch. `ArchiveDamaged` at the first break, after the records before
    it were given."""
    for record in read_batch(archive_dir, batch, check=True):
        if record["type"] == "journal":
            seq += 1
            if record["seq"] != seq:
                raise ArchiveDamaged(f"batch {batch.id}: journal entry {seq} missing")
            prev_hash = entry_hash(
                prev_hash,
                seq=seq,
                at=record["at"],
                document_id=record["document_id"],
                event=record["event"],
                detail=record["detail"],
            )
        yield record
    if (seq, prev_hash) != (batch.journal_last_seq, batch.journal_last_hash):
        raise ArchiveDamaged(f"batch {batch.id}: journal chain differs from its seal")
