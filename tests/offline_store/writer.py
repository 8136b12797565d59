"""Kill-test writer: issues documents forever, printing `ACK <request_id>` after each commit.

Run as `python -m tests.offline_store.writer DB_PATH`; the parent SIGKILLs it mid-stream.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from offline_store import (
    freeze_payload,
    insert_document,
    open_database,
    transaction,
)
from tests.offline_store.factory import T0, builder


def main(db_path: Path) -> None:
    conn = open_database(db_path, now=T0)
    index = 0
    while True:
        index += 1
        request_id = f"req-{index:06d}"
        now = T0 + timedelta(milliseconds=index)
        with transaction(conn):
            document = insert_document(
                conn, "K", builder(request_id, series="K", payload=None), now=now
            )
            freeze_payload(conn, document.id, f"payload-{request_id}".encode(), now=now)
        sys.stdout.write(f"ACK {request_id}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
