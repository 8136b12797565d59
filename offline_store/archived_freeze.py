"""A freeze entry that an earlier archive run moved into the monthly archive.

Before the archive stopped its journal segment at the freeze of any document still to be sent,
a run right after an offline period could move a delayed or pending receipt's freeze entry (the
payload's SHA-256) into the archive file while the receipt stayed live. The check before each
send then found no digest in the live journal and refused the receipt for good. The digest was
journaled and is still in the archive: it is read back from there, only on a live miss (the hot
path stays one index lookup), and only from a batch whose file matches its seal and whose
journal segment recomputes to the hash sealed for it. A damaged batch gives nothing, so a
digest found nowhere trustworthy stays the refusal it was.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from offline_store.archive import archive_batches
from offline_store.archive_files import ArchiveBatch, ArchiveDamaged, chained_records
from offline_store.journal import GENESIS_HASH

FREEZE_EVENT = "document.pending"


@dataclass
class ArchivedFreezes:
    """Freeze digests read from the sealed archive, each batch read at most once per instance
    (one instance per walk: a status call, a doctor run, a send)."""

    conn: sqlite3.Connection
    archive_dir: Path
    _batches: list[ArchiveBatch] | None = None
    _read: dict[int, dict[int, str]] = field(default_factory=dict)

    def digest(self, document_id: int) -> str | None:
        """The SHA-256 the document's last archived freeze entry recorded, or None. Newest
        batch first: a freeze moved by mistake went with a batch archived after it.

        Only batches that archived a document issued after this one are read: a batch's
        journal segment ends with the last entry written by the time its newest document was
        issued, and a freeze comes at or after its document's issue, so a batch of older
        documents only (ids follow issue time) cannot hold it. Reading every batch for a digest
        found nowhere took 128 s on a million receipts of history (504 batches), on the event
        loop, for every status call and sync pass; an unsent document is nearly always newer
        than every batch, so it now reads none. A clock stepped back between such a document
        and a later archived one could hide its digest: the document then stays refused, as it
        was before this fallback existed."""
        if self._batches is None:
            self._batches = archive_batches(self.conn)
        for index in range(len(self._batches) - 1, -1, -1):
            last_id = self._batches[index].last_id
            if last_id is not None and last_id < document_id:
                continue
            found = self._freezes(index).get(document_id)
            if found is not None:
                return found
        return None

    @property
    def batches_read(self) -> int:
        """How many sealed batches this walk has read (each at most once)."""
        return len(self._read)

    def _freezes(self, index: int) -> dict[int, str]:
        assert self._batches is not None
        batch = self._batches[index]
        if batch.id not in self._read:
            before = self._batches[index - 1] if index else None
            start = (
                (before.journal_last_seq, before.journal_last_hash) if before else (0, GENESIS_HASH)
            )
            try:
                self._read[batch.id] = _sealed_freezes(self.archive_dir, batch, *start)
            except (OSError, ArchiveDamaged, ValueError, KeyError, TypeError):
                self._read[batch.id] = {}
        return self._read[batch.id]


def _sealed_freezes(archive_dir: Path, batch: ArchiveBatch, seq: int, prev: str) -> dict[int, str]:
    """The batch's freeze digests by document, after checking its bytes against the seal and
    its journal segment against the chain (from the previous batch's end to this one's)."""
    if batch.journal_last_seq == seq:
        return {}
    freezes: dict[int, str] = {}
    for record in chained_records(archive_dir, batch, seq, prev):
        if record["type"] != "journal" or record["event"] != FREEZE_EVENT:
            continue
        detail = record["detail"]
        digest = detail.get("payload_sha256") if isinstance(detail, dict) else None
        if record["document_id"] is not None and digest:
            freezes[int(record["document_id"])] = str(digest)
    return freezes
