"""A new register learns its packing dictionary from its first receipts within seconds (the
daemon looks every FIRST_DICTIONARY_LOOK_S), not at its first maintenance run a minute after
the start: the receipts sold next are packed with it and read back whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import offline_store as store
from agent.core.answers import DocumentAnswer
from agent.tools.local_stack import LocalStack, cash_receipt, post_json
from offline_store.dictionaries import LEARNED_EVENT, MIN_DOCUMENTS
from tests.e2e.stack import parsed, quiet_settings, wait_for

pytestmark = pytest.mark.e2e


def _receipt(request_id: str) -> dict[str, object]:
    body = cash_receipt(request_id)
    body["delivery"] = {"print": False}
    return body


@contextmanager
def _without_maintenance(root: Path) -> Iterator[LocalStack]:
    """A stack whose maintenance run comes only at the start (an empty store: nothing to
    learn) and then an hour later: a dictionary learned within the test is the first look's."""
    stack = LocalStack(root, quiet_settings())
    try:
        stack.start_sandbox()
        config = stack.write_config()
        with config.open("a", encoding="utf-8") as handle:
            handle.write("\n[retention]\nmaintenance_interval_s = 3600\n")
        stack.start_daemon()
        yield stack
    finally:
        stack.stop()


def test_the_first_receipts_teach_the_daemon_its_dictionary_in_seconds(tmp_path: Path) -> None:
    with _without_maintenance(tmp_path) as stack, stack.client() as till:
        for index in range(MIN_DOCUMENTS):
            parsed(post_json(till, "/v1/receipts", _receipt(f"first-{index}")), DocumentAnswer)
        db = stack.open_store()
        try:
            # The deadline only bounds a hang: no maintenance run comes within the hour.
            learned = wait_for(
                lambda: db.execute(
                    "SELECT detail FROM journal_named WHERE event = ?", (LEARNED_EVENT,)
                ).fetchone(),
                timeout_s=30,
                what="a packing dictionary learned",
            )
            dictionary = json.loads(learned[0])["dictionary"]
            after = parsed(post_json(till, "/v1/receipts", _receipt("after")), DocumentAnswer)
            doc = store.get_document(db, after.receipt_id)
            assert doc is not None and doc.pack_dict == dictionary and doc.payload
            assert store.altered_payloads(db, states=None) == []
        finally:
            db.close()
