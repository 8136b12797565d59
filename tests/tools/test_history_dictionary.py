"""The history learns its packing dictionary as the daemon does (core/maintenance.py
`FirstDictionary`): from its first receipts, not at the start of its second batch of 2,000, nor
from the receipts the bench's daemon sold on the empty store (dated after the history), so the
bench's figures are those of a register whose first receipts taught it its dictionary."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import offline_store as store
from agent.clock import ATHENS
from agent.tools.history import build_history
from offline_store.dictionaries import SAMPLE_BYTES
from tests.fiscal.fixtures import shop_config
from tests.offline_store.factory import issue_cafe

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=ATHENS)


def test_the_history_learns_its_dictionary_from_its_first_receipts(tmp_path: Path) -> None:
    config = shop_config(state_dir=str(tmp_path))
    config.database_path.parent.mkdir(parents=True, exist_ok=True)
    conn = store.open_database(config.database_path, now=NOW)
    try:
        build_history(conn, config, 60, now=NOW, log=lambda _: None)
        learned = [row[0] for row in conn.execute("SELECT length(sample) FROM pack_dictionaries")]
        plain = [row[0] for row in conn.execute("SELECT id FROM documents WHERE pack_dict IS NULL")]
    finally:
        store.close_database(conn)
    # A short one from the first few receipts, the full one as soon as they fill the sample.
    assert len(learned) == 2 and learned[0] < SAMPLE_BYTES and learned[1] == SAMPLE_BYTES
    # Only the receipts sold before the first, not the first 2,000 (a batch).
    assert plain == list(range(1, len(plain) + 1)) and len(plain) < 8


def test_the_history_does_not_take_the_empty_stores_dictionary(tmp_path: Path) -> None:
    """The bench measures the empty store first: its daemon learns a dictionary, dated now,
    from other receipts; the history written before that date learns its own."""
    config = shop_config(state_dir=str(tmp_path))
    config.database_path.parent.mkdir(parents=True, exist_ok=True)
    conn = store.open_database(config.database_path, now=NOW)
    try:
        issue_cafe(conn, 0, 40, now=NOW)
        with store.transaction(conn):
            empty = store.learn_dictionary(conn, now=NOW)
        assert empty is not None and empty.bytes == SAMPLE_BYTES
        build_history(conn, config, 60, now=NOW, per_day=10, log=lambda _: None)
        packed = [
            row[0]
            for row in conn.execute("SELECT pack_dict FROM documents ORDER BY id DESC LIMIT 50")
        ]
    finally:
        store.close_database(conn)
    assert empty.id not in packed and len(set(packed)) == 1
