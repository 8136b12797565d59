"""Receipts already issued: read one, list them, and queue a copy («ΑΝΤΙΓΡΑΦΟ») for the printer."""

from __future__ import annotations

import offline_store as store
from agent.core.answers import DocumentAnswer, ReceiptList, ReprintAnswer, document_answer
from agent.core.errors import ReceiptNotFound, ReceiptUnreadable
from agent.core.print_orders import queue_print
from agent.core.request_identity import Answer, remember_created, remembered_answer, request_hash
from agent.core.runtime import Runtime
from agent.fiscal.receipt_model import PrintRequest

RECEIPT_STATES = tuple(state.value for state in store.DocumentState)
REPRINT = "receipts/print"  # the endpoint its remembered answers are stored under


class ReceiptService:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def get(self, receipt_id: int) -> DocumentAnswer:
        """A live receipt, or one moved to the monthly archive (`"archived": true`)."""
        try:
            doc = store.get_document(self.rt.conn, receipt_id)
        except store.PackedDataDamaged as exc:
            raise ReceiptUnreadable(
                f"receipt {receipt_id} cannot be read: its stored data changed on disk ({exc}); "
                "it is never sent; see pos-agent status"
            ) from exc
        if doc is not None:
            return document_answer(self.rt, doc)
        archived = self._archived(receipt_id)
        if archived is None:
            raise ReceiptNotFound(f"no receipt {receipt_id}")
        return document_answer(self.rt, archived).model_copy(update={"archived": True})

    def newest(self, state: str | None, *, limit: int, offset: int) -> ReceiptList:
        """Newest first; `state` is one of `RECEIPT_STATES` (the caller validated it)."""
        docs = store.list_documents(
            self.rt.conn,
            state=store.DocumentState(state) if state else None,
            limit=limit,
            offset=offset,
        )
        return ReceiptList(receipts=[document_answer(self.rt, doc) for doc in docs])

    def reprint(self, receipt_id: int, request: PrintRequest) -> Answer[ReprintAnswer]:
        """The copy's print job and the remembered answer commit together: a replay with the
        same request_id returns the first job instead of printing a second copy."""
        rt = self.rt
        digest = request_hash(request)
        doc = store.get_document(rt.conn, receipt_id)
        # An archived receipt's copy is remembered without the document link: its row (which
        # the idempotency table's foreign key names) is in the archive file, not in the table.
        archived = self._archived(receipt_id) if doc is None else None
        linked = None if archived is not None else receipt_id
        replay = remembered_answer(
            rt.conn,
            request.request_id,
            digest,
            endpoint=REPRINT,
            model=ReprintAnswer,
            document_id=linked,
        )
        if replay is not None:
            return replay
        doc = doc or archived
        if doc is None or doc.payload is None:
            raise ReceiptNotFound(f"no issued receipt {receipt_id}")
        with store.transaction(rt.conn):
            job_id = queue_print(rt, doc, copy=True)
            answer = remember_created(
                rt.conn,
                request_id=request.request_id,
                endpoint=REPRINT,
                digest=digest,
                answer=ReprintAnswer(
                    receipt_id=doc.id, print_job_id=job_id, copy=True, state="queued"
                ),
                document_id=linked,
                now=rt.clock(),
            )
        rt.notify_printer()
        return answer

    def _archived(self, receipt_id: int) -> store.StoredDocument | None:
        """Read from the month file that holds it; only for ids no longer in the live table."""
        return store.find_archived(self.rt.conn, self.rt.config.archive_dir, receipt_id)
