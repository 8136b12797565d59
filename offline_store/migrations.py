"""Forward-only schema migrations, recorded in `PRAGMA user_version`.

Each migration runs in one `BEGIN IMMEDIATE` transaction together with its version bump, so a
crash leaves the schema at a whole version. No migration drops or recreates a table that holds
receipts or the journal (they may hold receipts not yet at the provider); schema 2 recreates
only the print spool, whose rows are rebuilt from the documents.

Schema 2 (history) keeps the cost of every read on the till's and the technician's
path independent of the years of history, and the live file small:
- `row_counts` and `series_counters.present/archived`, maintained by triggers, replace the
  `count(*)` scans of `status`, `/metrics` and the numbering check;
- `documents.packed` (see `packing.py`): new rows store their request and payload compressed;
  rows of schema 1 are packed later in bounded background slices (`compact_slice`), so the
  upgrade itself does no work proportional to the history except initialising the counters;
- the print spool drops a printed job's layout (a reprint rebuilds it from the document) and
  loses its foreign key, so a copy of an archived receipt can be queued;
- `archive_batches`/`archived_numbers` record what moved to the monthly archive files, and the
  delete triggers let only accepted documents of a sealed batch, and only journal entries
  covered by a sealed batch, leave the live file.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from offline_store.errors import SchemaTooNew


class Migration(NamedTuple):
    """One schema step: the `user_version` it leads to and the SQL script that gets there."""

    version: int
    script: str


_SCHEMA_1 = """
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    request_hash TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('receipt', 'pos_receipt')),
    type_code TEXT NOT NULL,
    series TEXT NOT NULL,
    number INTEGER NOT NULL CHECK (number >= 1),
    issued_at TEXT NOT NULL CHECK (julianday(issued_at) IS NOT NULL),
    uid TEXT NOT NULL,
    internal_id TEXT NOT NULL UNIQUE,
    request_json TEXT NOT NULL,
    payload BLOB,
    total_amount TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('reserved', 'pending', 'delayed', 'accepted', 'rejected', 'void')),
    delayed_code INTEGER NOT NULL DEFAULT 0 CHECK (delayed_code IN (0, 1, 2)),
    due_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT,
    mark INTEGER,
    mark_unknown INTEGER NOT NULL DEFAULT 0 CHECK (mark_unknown IN (0, 1)),
    authentication_code TEXT,
    qr_url TEXT,
    offline_qr_url TEXT,
    reserved_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (series, number),
    CHECK ((payload IS NULL) = (state IN ('reserved', 'void')))
) STRICT;

CREATE INDEX documents_sync ON documents (state, julianday(next_attempt_at), id);
CREATE INDEX documents_state ON documents (state, id);

CREATE TABLE series_counters (
    series TEXT PRIMARY KEY,
    last_number INTEGER NOT NULL
) STRICT;

-- Gap-free numbering enforced by the database itself: a row must carry the next number of its
-- series, and the counter moves only together with that insert.
CREATE TRIGGER documents_number_is_next BEFORE INSERT ON documents
BEGIN
    SELECT RAISE(ABORT, 'document number is not the next number of its series')
    WHERE NEW.number != coalesce(
        (SELECT last_number FROM series_counters WHERE series = NEW.series), 0) + 1;
END;

CREATE TRIGGER documents_advance_counter AFTER INSERT ON documents
BEGIN
    INSERT OR IGNORE INTO series_counters (series, last_number) VALUES (NEW.series, 0);
    UPDATE series_counters SET last_number = NEW.number WHERE series = NEW.series;
END;

CREATE TRIGGER documents_never_deleted BEFORE DELETE ON documents
BEGIN
    SELECT RAISE(ABORT, 'documents are never deleted; void them instead');
END;

CREATE TRIGGER documents_identity_fixed
BEFORE UPDATE OF series, number, uid, internal_id, kind, type_code, issued_at ON documents
WHEN NEW.series IS NOT OLD.series OR NEW.number IS NOT OLD.number OR NEW.uid IS NOT OLD.uid
    OR NEW.internal_id IS NOT OLD.internal_id OR NEW.kind IS NOT OLD.kind
    OR NEW.type_code IS NOT OLD.type_code OR NEW.issued_at IS NOT OLD.issued_at
BEGIN
    SELECT RAISE(ABORT, 'a document identity never changes');
END;

CREATE TRIGGER documents_payload_frozen BEFORE UPDATE OF payload ON documents
WHEN OLD.payload IS NOT NULL AND NEW.payload IS NOT OLD.payload
BEGIN
    SELECT RAISE(ABORT, 'a frozen payload never changes');
END;

CREATE TABLE payment_signatures (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents (id),
    request_id TEXT NOT NULL UNIQUE,
    terminal_id TEXT NOT NULL,
    amount TEXT NOT NULL,
    tip TEXT NOT NULL,
    input TEXT NOT NULL,
    signature TEXT NOT NULL,
    duration_type TEXT NOT NULL,
    expires_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('active', 'used', 'superseded')),
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX payment_signatures_document ON payment_signatures (document_id, status);

CREATE TABLE print_jobs (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents (id),
    copy INTEGER NOT NULL CHECK (copy IN (0, 1)),
    layout TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'printing', 'printed', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    printed_at TEXT
) STRICT;

-- Partial: only the few jobs not yet printed are indexed by state, not years of printed ones.
CREATE INDEX print_jobs_queued ON print_jobs (id) WHERE state = 'queued';
CREATE INDEX print_jobs_printing ON print_jobs (id) WHERE state = 'printing';
CREATE INDEX print_jobs_document ON print_jobs (document_id);

CREATE TABLE api_requests (
    request_id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    response TEXT NOT NULL,
    document_id INTEGER REFERENCES documents (id),
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE journal (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    document_id INTEGER,
    event TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
) STRICT;

CREATE INDEX journal_document ON journal (document_id);

CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN
    SELECT RAISE(ABORT, 'the journal is append-only');
END;

CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN
    SELECT RAISE(ABORT, 'the journal is append-only');
END;

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
"""

_SCHEMA_2 = """
ALTER TABLE documents ADD COLUMN packed INTEGER NOT NULL DEFAULT 0 CHECK (packed IN (0, 1));
ALTER TABLE documents ADD COLUMN request_packed BLOB;

-- Packing a row of schema 1 rewrites its payload once, to the same bytes compressed.
DROP TRIGGER documents_payload_frozen;
CREATE TRIGGER documents_payload_frozen BEFORE UPDATE OF payload ON documents
WHEN OLD.payload IS NOT NULL AND NEW.payload IS NOT OLD.payload
    AND NOT (OLD.packed = 0 AND NEW.packed = 1)
BEGIN
    SELECT RAISE(ABORT, 'a frozen payload never changes');
END;

CREATE TRIGGER documents_packed_for_good BEFORE UPDATE OF packed ON documents
WHEN OLD.packed = 1 AND NEW.packed != 1
BEGIN
    SELECT RAISE(ABORT, 'a packed document stays packed');
END;

CREATE INDEX documents_unpacked ON documents (id) WHERE packed = 0;
CREATE INDEX documents_mark_unknown ON documents (id) WHERE mark_unknown = 1;
-- Unused by every query (the planner takes documents_state), and 20 bytes on every receipt.
DROP INDEX documents_sync;
DROP INDEX journal_document;

CREATE TABLE row_counts (
    name TEXT PRIMARY KEY,
    n INTEGER NOT NULL
) STRICT;

INSERT INTO row_counts (name, n)
    SELECT 'documents.' || state, count(*) FROM documents GROUP BY state;

CREATE TRIGGER documents_count_insert AFTER INSERT ON documents
BEGIN
    INSERT INTO row_counts (name, n) VALUES ('documents.' || NEW.state, 1)
        ON CONFLICT (name) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER documents_count_state AFTER UPDATE OF state ON documents
WHEN NEW.state IS NOT OLD.state
BEGIN
    UPDATE row_counts SET n = n - 1 WHERE name = 'documents.' || OLD.state;
    INSERT INTO row_counts (name, n) VALUES ('documents.' || NEW.state, 1)
        ON CONFLICT (name) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER documents_count_delete AFTER DELETE ON documents
BEGIN
    UPDATE row_counts SET n = n - 1 WHERE name = 'documents.' || OLD.state;
END;

ALTER TABLE series_counters ADD COLUMN present INTEGER NOT NULL DEFAULT 0;
ALTER TABLE series_counters ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
UPDATE series_counters
    SET present = (SELECT count(*) FROM documents d WHERE d.series = series_counters.series);

CREATE TRIGGER documents_count_series AFTER INSERT ON documents
BEGIN
    INSERT INTO series_counters (series, last_number, present) VALUES (NEW.series, 0, 1)
        ON CONFLICT (series) DO UPDATE SET present = present + 1;
END;

CREATE TABLE print_jobs_2 (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL,
    copy INTEGER NOT NULL CHECK (copy IN (0, 1)),
    layout TEXT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'printing', 'printed', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    printed_at TEXT,
    CHECK (layout IS NOT NULL OR state = 'printed')
) STRICT;

INSERT INTO print_jobs_2
    SELECT id, document_id, copy, CASE WHEN state = 'printed' THEN NULL ELSE layout END, state,
        attempts, next_attempt_at, last_error, created_at, printed_at
    FROM print_jobs;
DROP TABLE print_jobs;
ALTER TABLE print_jobs_2 RENAME TO print_jobs;
-- Partial: only the few jobs not yet printed are indexed by state, not years of printed ones.
CREATE INDEX print_jobs_queued ON print_jobs (id) WHERE state = 'queued';
CREATE INDEX print_jobs_printing ON print_jobs (id) WHERE state = 'printing';
CREATE INDEX print_jobs_document ON print_jobs (document_id);

INSERT INTO row_counts (name, n)
    SELECT 'print_jobs.' || state, count(*) FROM print_jobs GROUP BY state;

CREATE TRIGGER print_jobs_count_insert AFTER INSERT ON print_jobs
BEGIN
    INSERT INTO row_counts (name, n) VALUES ('print_jobs.' || NEW.state, 1)
        ON CONFLICT (name) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER print_jobs_count_state AFTER UPDATE OF state ON print_jobs
WHEN NEW.state IS NOT OLD.state
BEGIN
    UPDATE row_counts SET n = n - 1 WHERE name = 'print_jobs.' || OLD.state;
    INSERT INTO row_counts (name, n) VALUES ('print_jobs.' || NEW.state, 1)
        ON CONFLICT (name) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER print_jobs_count_delete AFTER DELETE ON print_jobs
BEGIN
    UPDATE row_counts SET n = n - 1 WHERE name = 'print_jobs.' || OLD.state;
END;

CREATE TABLE archive_batches (
    id INTEGER PRIMARY KEY,
    month TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]'),
    file TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    documents INTEGER NOT NULL,
    first_id INTEGER,
    last_id INTEGER,
    journal_last_seq INTEGER NOT NULL,
    journal_last_hash TEXT NOT NULL,
    sealed_at TEXT NOT NULL
) STRICT;

CREATE INDEX archive_batches_month ON archive_batches (month, id);

CREATE TABLE archived_numbers (
    batch_id INTEGER NOT NULL REFERENCES archive_batches (id),
    series TEXT NOT NULL,
    first_number INTEGER NOT NULL,
    last_number INTEGER NOT NULL,
    CHECK (first_number <= last_number)
) STRICT;

CREATE INDEX archived_numbers_series ON archived_numbers (series, first_number);

-- Only an accepted document of the sealed batch that holds it may leave the live file.
DROP TRIGGER documents_never_deleted;
CREATE TRIGGER documents_never_deleted BEFORE DELETE ON documents
WHEN OLD.state IS NOT 'accepted' OR NOT EXISTS (
    SELECT 1 FROM archive_batches b
    WHERE b.month = substr(OLD.issued_at, 1, 7) AND OLD.id BETWEEN b.first_id AND b.last_id)
BEGIN
    SELECT RAISE(ABORT, 'documents are never deleted; void them instead (only accepted documents of a sealed archive batch leave the live store)');
END;

CREATE TRIGGER documents_count_archived AFTER DELETE ON documents
BEGIN
    UPDATE series_counters SET present = present - 1, archived = archived + 1
        WHERE series = OLD.series;
END;

DROP TRIGGER journal_no_delete;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
WHEN OLD.seq > coalesce((SELECT max(journal_last_seq) FROM archive_batches), 0)
BEGIN
    SELECT RAISE(ABORT, 'the journal is append-only');
END;
"""

# Food service: orders per table (offline_store/orders.py) and cash drawer kicks
# (offline_store/drawer.py). After schema 2 (history), which it was written beside.
_SCHEMA_3 = """
CREATE TABLE table_orders (
    request_id TEXT PRIMARY KEY,
    table_id TEXT NOT NULL,
    waiter TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('order', 'return', 'cancel')),
    cancel_request_id TEXT,
    close_request_id TEXT,
    created_at TEXT NOT NULL
) STRICT;

-- Open orders are found without reading the history: the unsettled ones through a partial
-- index, the ones whose closing (cancelling) document was rejected through its request id.
CREATE INDEX table_orders_unsettled ON table_orders (table_id)
    WHERE close_request_id IS NULL AND cancel_request_id IS NULL AND kind != 'cancel';
CREATE INDEX table_orders_close ON table_orders (close_request_id);
CREATE INDEX table_orders_cancel ON table_orders (cancel_request_id);

CREATE TABLE drawer_kicks (
    id INTEGER PRIMARY KEY,
    request_id TEXT UNIQUE,
    document_id INTEGER,  -- no foreign key: an archived receipt leaves the live file
    reason TEXT NOT NULL CHECK (reason IN ('cash_receipt', 'manual')),
    caller TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'opened', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    done_at TEXT
) STRICT;

CREATE INDEX drawer_kicks_queue ON drawer_kicks (state, id);
"""

# A compact live store (a receipt within 2 KB: it took 2.35 KB with schema 3). Nothing is
# rewritten (ALTER TABLE ADD COLUMN only touches the schema); new rows use the new columns.
# - journal entries keep their hash as 32 bytes (`digest`) instead of 64 hex characters and
#   their time as microseconds since the epoch (`at_us`) instead of ISO text; `hash` and `at`
#   stay '' on those rows (journal.py reads both forms);
# - payloads are packed with a dictionary learned from the register's own earlier receipts
#   (`pack_dictionaries`, `documents.pack_dict`; see dictionaries.py): its issuer block and
#   menu are in every payload, and a preset dictionary of them takes a payload from ~430 to
#   ~150 bytes. A dictionary is never changed or deleted: the rows packed with it need it;
# - a remembered answer (`api_requests`, 800 bytes for a card signature's) is kept packed in
#   `response_packed` (packing.pack_answer), `response` stays ''; and found by its document, as
#   the archive reads and deletes it (a card sale's sign answer: the table grows with them).
_SCHEMA_4 = """
ALTER TABLE api_requests ADD COLUMN response_packed BLOB;
CREATE INDEX api_requests_document ON api_requests (document_id);

ALTER TABLE journal ADD COLUMN digest BLOB CHECK (digest IS NULL OR length(digest) = 32);
ALTER TABLE journal ADD COLUMN at_us INTEGER;

CREATE TABLE pack_dictionaries (
    id INTEGER PRIMARY KEY,
    sample BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    documents INTEGER NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TRIGGER pack_dictionaries_fixed BEFORE UPDATE ON pack_dictionaries
BEGIN
    SELECT RAISE(ABORT, 'a packing dictionary never changes: documents are packed with it');
END;

CREATE TRIGGER pack_dictionaries_kept BEFORE DELETE ON pack_dictionaries
BEGIN
    SELECT RAISE(ABORT, 'a packing dictionary is never deleted: documents are packed with it');
END;

ALTER TABLE documents ADD COLUMN pack_dict INTEGER REFERENCES pack_dictionaries (id);

CREATE TRIGGER documents_pack_dict_fixed BEFORE UPDATE OF pack_dict ON documents
WHEN OLD.pack_dict IS NOT NEW.pack_dict AND NOT (OLD.packed = 0 AND NEW.packed = 1)
BEGIN
    SELECT RAISE(ABORT, 'a document stays packed with the dictionary it was packed with');
END;
"""

# The day's reports (X, Z) and the daily closings. A day's documents and drawer kicks are found
# through the id range each Athens day spans (`day_ranges`, one row per day and table, kept by
# triggers), never by a scan of the history; `closings` keeps every Z report, numbered without
# gaps, with the id ranges and the journal head it covers, and its slip's place in the print
# queue (the receipt printer's worker prints it between receipts).
_SCHEMA_5 = """
CREATE TABLE day_ranges (
    day TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    source TEXT NOT NULL CHECK (source IN ('documents', 'drawer_kicks')),
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    PRIMARY KEY (day, source)
) STRICT, WITHOUT ROWID;

INSERT INTO day_ranges (day, source, first_id, last_id)
    SELECT substr(issued_at, 1, 10), 'documents', min(id), max(id) FROM documents GROUP BY 1;
INSERT INTO day_ranges (day, source, first_id, last_id)
    SELECT substr(created_at, 1, 10), 'drawer_kicks', min(id), max(id) FROM drawer_kicks
    GROUP BY 1;

CREATE TRIGGER documents_day_range AFTER INSERT ON documents
BEGIN
    INSERT INTO day_ranges (day, source, first_id, last_id)
        VALUES (substr(NEW.issued_at, 1, 10), 'documents', NEW.id, NEW.id)
        ON CONFLICT (day, source) DO UPDATE SET
            first_id = min(first_id, excluded.first_id), last_id = max(last_id, excluded.last_id);
END;

CREATE TRIGGER drawer_kicks_day_range AFTER INSERT ON drawer_kicks
BEGIN
    INSERT INTO day_ranges (day, source, first_id, last_id)
        VALUES (substr(NEW.created_at, 1, 10), 'drawer_kicks', NEW.id, NEW.id)
        ON CONFLICT (day, source) DO UPDATE SET
            first_id = min(first_id, excluded.first_id), last_id = max(last_id, excluded.last_id);
END;

CREATE TABLE closings (
    number INTEGER PRIMARY KEY CHECK (number >= 1),
    request_id TEXT NOT NULL UNIQUE,
    closed_at TEXT NOT NULL CHECK (julianday(closed_at) IS NOT NULL),
    after_document_id INTEGER NOT NULL,
    last_document_id INTEGER NOT NULL CHECK (last_document_id >= after_document_id),
    after_kick_id INTEGER NOT NULL,
    last_kick_id INTEGER NOT NULL CHECK (last_kick_id >= after_kick_id),
    journal_seq INTEGER NOT NULL,
    report TEXT NOT NULL,
    reconciliation TEXT,
    print_state TEXT NOT NULL CHECK (print_state IN ('none', 'queued', 'printed')),
    print_attempts INTEGER NOT NULL DEFAULT 0,
    print_error TEXT,
    next_print_at TEXT
) STRICT;

CREATE INDEX closings_print_queue ON closings (number) WHERE print_state = 'queued';

-- Z numbers run without gaps, each closing starts where the previous one ended, and a kept
-- report never changes or leaves (its reconciliation result is added later).
CREATE TRIGGER closings_number_is_next BEFORE INSERT ON closings
WHEN NEW.number != coalesce((SELECT max(number) FROM closings), 0) + 1
    OR NEW.after_document_id != coalesce(
        (SELECT last_document_id FROM closings WHERE number = NEW.number - 1), 0)
    OR NEW.after_kick_id != coalesce(
        (SELECT last_kick_id FROM closings WHERE number = NEW.number - 1), 0)
BEGIN
    SELECT RAISE(ABORT, 'a closing takes the next Z number and starts where the last one ended');
END;

CREATE TRIGGER closings_kept BEFORE UPDATE OF number, request_id, closed_at, after_document_id,
    last_document_id, after_kick_id, last_kick_id, journal_seq, report ON closings
BEGIN
    SELECT RAISE(ABORT, 'a closing never changes');
END;

CREATE TRIGGER closings_never_deleted BEFORE DELETE ON closings
BEGIN
    SELECT RAISE(ABORT, 'a closing is never deleted');
END;
"""

# Split bills: a receipt that pays part of a table (offline_store/orders.py). It counts while its
# document lives and until the receipt that brought the table to 0.00 settles it with the orders.
_SCHEMA_6 = """
CREATE TABLE table_payments (
    request_id TEXT PRIMARY KEY,
    table_id TEXT NOT NULL,
    paid_json TEXT NOT NULL,
    close_request_id TEXT,
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX table_payments_unsettled ON table_payments (table_id) WHERE close_request_id IS NULL;
CREATE INDEX table_payments_close ON table_payments (close_request_id);
"""

# Years of receipts at their real cost:
# - print jobs that leave nothing behind: a job's layout lives in `print_layouts` and is deleted
#   once the job is finished (print_jobs.py); new jobs keep '' in `print_jobs.layout`. The jobs
#   already there are rewritten later in background slices (print_compaction.py) up to the id
#   recorded here, so the upgrade itself reads no row of them;
# - a card signature's remembered answer names its signature row and is packed against it
#   (requests.py), so the provider's signature is stored once;
# - the check of a payload against its journaled hash before every send finds the freeze's
#   entry through a partial index (one entry a receipt, ~14 bytes) instead of walking the
#   journal back from its head (payload_integrity.py).
_SCHEMA_7 = """
CREATE TABLE print_layouts (
    job_id INTEGER PRIMARY KEY,
    layout TEXT NOT NULL
) STRICT;

CREATE TRIGGER print_jobs_layout_deleted AFTER DELETE ON print_jobs
BEGIN
    DELETE FROM print_layouts WHERE job_id = OLD.id;
END;

INSERT INTO meta (key, value)
    SELECT 'print_jobs.compact_until', coalesce(max(id), 0) FROM print_jobs;

ALTER TABLE api_requests ADD COLUMN signature_id INTEGER;

CREATE INDEX journal_frozen ON journal (document_id) WHERE event = 'document.pending';
"""

# IRIS payments through the provider (offline_store/iris.py): the QR, the IRIS ids and the
# provider's signature of a reserved receipt, until the receipt carrying it is issued.
_SCHEMA_8 = """
CREATE TABLE iris_payments (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents (id),
    request_id TEXT NOT NULL UNIQUE,
    amount TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    end_to_end_id TEXT NOT NULL,
    authorisation_request_id TEXT NOT NULL,
    qr TEXT NOT NULL,
    signed_input TEXT NOT NULL,
    signature TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'completed', 'expired', 'failed', 'used')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE INDEX iris_payments_document ON iris_payments (document_id);
"""

# A card sale's payload carries the provider's signature and the signed input, which its
# signature row holds too: the payload is packed against that row (`documents.pack_signature`),
# as a remembered sign answer is since schema 7, ~170 bytes less a card sale.
_SCHEMA_9 = """
ALTER TABLE documents ADD COLUMN pack_signature INTEGER;

CREATE TRIGGER documents_pack_signature_fixed BEFORE UPDATE OF pack_signature ON documents
WHEN OLD.payload IS NOT NULL AND NEW.pack_signature IS NOT OLD.pack_signature
BEGIN
    SELECT RAISE(ABORT, 'a frozen payload stays packed against the signature it was packed with');
END;
"""

# An IRIS payment's QR printed on the receipt printer when the till asks (offline_store/iris.py).
_SCHEMA_10 = """
ALTER TABLE iris_payments ADD COLUMN print_state TEXT NOT NULL DEFAULT 'none'
    CHECK (print_state IN ('none', 'queued', 'printed'));
ALTER TABLE iris_payments ADD COLUMN print_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE iris_payments ADD COLUMN print_next_at TEXT;

CREATE INDEX iris_payments_print_queue ON iris_payments (id) WHERE print_state = 'queued';
"""

# A remembered answer records whether its call created something (`created`), not the HTTP
# status the edge answered with: the store and the use cases know no HTTP. Rows written before
# recorded 201 for a creating call. The table is rewritten once (its live rows only: they leave
# with their documents to the archive); archive files keep the `status_code` they were written
# with, which nothing reads back.
_SCHEMA_11 = """
ALTER TABLE api_requests ADD COLUMN created INTEGER NOT NULL DEFAULT 0 CHECK (created IN (0, 1));
UPDATE api_requests SET created = 1 WHERE status_code = 201;
ALTER TABLE api_requests DROP COLUMN status_code;
"""

# A journal entry's fixed cost (~75 bytes before its detail, five to nine entries a receipt):
# - the event is stored as a small code (`journal.code`, names in `journal_event_names`, fixed for
#   good: entries hash the name) and `event` stays ''; events not listed keep their name;
# - only the last entry a transaction writes keeps its hash (`digest`): the others' hashes follow
#   from the one before (journal.py recomputes them), and the transaction's last hash covers them
#   all, so an edit anywhere inside it still breaks the chain. Appending an entry drops the digest
#   of the entry before it when both belong to the same transaction, the one UPDATE the journal
#   allows: only the newest-but-one entry's digest, nothing else;
# - `journal_named` reads entries with their names (a coded entry whose `event` is not '' reads
#   as another name, so it does not verify); the freeze's index covers both forms.
_SCHEMA_12 = """
CREATE TABLE journal_event_names (
    code INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;

INSERT INTO journal_event_names (code, name) VALUES
    (1, 'document.reserved'),
    (2, 'document.pending'),
    (3, 'document.delayed'),
    (4, 'document.accepted'),
    (5, 'document.rejected'),
    (6, 'document.void'),
    (7, 'document.taken_over'),
    (8, 'document.reservation_extended'),
    (9, 'document.resend'),
    (10, 'document.mark_resolved'),
    (11, 'signature.added'),
    (12, 'signature.used'),
    (13, 'signature.superseded'),
    (14, 'print.queued'),
    (15, 'print.printing'),
    (16, 'print.printed'),
    (17, 'print.retry'),
    (18, 'print.failed'),
    (19, 'print.requeued'),
    (20, 'drawer.queued'),
    (21, 'drawer.opened'),
    (22, 'drawer.failed'),
    (23, 'order.placed'),
    (24, 'table.part_paid'),
    (25, 'iris.pending'),
    (26, 'payment.update_sending'),
    (27, 'payment.updated');

CREATE TRIGGER journal_event_names_fixed BEFORE UPDATE ON journal_event_names
BEGIN
    SELECT RAISE(ABORT, 'a journal event code never changes: entries are hashed with its name');
END;

CREATE TRIGGER journal_event_names_kept BEFORE DELETE ON journal_event_names
BEGIN
    SELECT RAISE(ABORT, 'a journal event code is never deleted: entries are stored with it');
END;

ALTER TABLE journal ADD COLUMN code INTEGER;

CREATE VIEW journal_named AS
    SELECT j.seq, j.at, j.at_us, j.document_id, coalesce(n.name, '') || j.event AS event, j.detail,
        j.prev_hash, j.hash, j.digest
    FROM journal j LEFT JOIN journal_event_names n ON n.code = j.code;

DROP INDEX journal_frozen;
CREATE INDEX journal_frozen ON journal (document_id) WHERE code = 2 OR event = 'document.pending';

DROP TRIGGER journal_no_update;
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
WHEN NOT (OLD.digest IS NOT NULL AND NEW.digest IS NULL AND OLD.at_us IS NOT NULL
    AND OLD.seq = (SELECT max(seq) FROM journal) - 1
    AND NEW.seq = OLD.seq AND NEW.at IS OLD.at AND NEW.at_us IS OLD.at_us
    AND NEW.document_id IS OLD.document_id AND NEW.event IS OLD.event AND NEW.code IS OLD.code
    AND NEW.detail IS OLD.detail AND NEW.prev_hash IS OLD.prev_hash AND NEW.hash IS OLD.hash)
BEGIN
    SELECT RAISE(ABORT, 'the journal is append-only');
END;
"""

# A request's and a remembered answer's SHA-256 as 32 bytes (`documents.request_digest`,
# `api_requests.body_digest`) instead of 64 hex characters; the text column stays '' on new rows
# (columns.digest_to_db). Nothing is rewritten.
_SCHEMA_13 = """
ALTER TABLE documents ADD COLUMN request_digest BLOB
    CHECK (request_digest IS NULL OR length(request_digest) = 32);
ALTER TABLE api_requests ADD COLUMN body_digest BLOB
    CHECK (body_digest IS NULL OR length(body_digest) = 32);
"""

# A coded journal entry's detail packed (`journal.detail_packed`, journal_detail.py; `detail`
# stays ''): ~30 bytes an entry as text, its digests as 32 bytes instead of 64 characters; and a
# time in whole seconds kept as seconds (`at_s`, 4 bytes; `at_us` NULL), hashed as before in
# microseconds. The view reads the new columns; the one UPDATE allowed leaves them as they are.
# A document's `created_at` is '' when it is its `issued_at` (documents.created_at), so a file of
# this schema is not for an older agent.
_SCHEMA_14 = """
ALTER TABLE journal ADD COLUMN detail_packed BLOB;
ALTER TABLE journal ADD COLUMN at_s INTEGER;

DROP VIEW journal_named;
CREATE VIEW journal_named AS
    SELECT j.seq, j.at, j.at_us, j.at_s, j.document_id,
        coalesce(n.name, '') || j.event AS event, j.detail, j.detail_packed, j.prev_hash, j.hash,
        j.digest
    FROM journal j LEFT JOIN journal_event_names n ON n.code = j.code;

DROP TRIGGER journal_no_update;
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
WHEN NOT (OLD.digest IS NOT NULL AND NEW.digest IS NULL
    AND (OLD.at_us IS NOT NULL OR OLD.at_s IS NOT NULL)
    AND OLD.seq = (SELECT max(seq) FROM journal) - 1
    AND NEW.seq = OLD.seq AND NEW.at IS OLD.at AND NEW.at_us IS OLD.at_us AND NEW.at_s IS OLD.at_s
    AND NEW.document_id IS OLD.document_id AND NEW.event IS OLD.event AND NEW.code IS OLD.code
    AND NEW.detail IS OLD.detail AND NEW.detail_packed IS OLD.detail_packed
    AND NEW.prev_hash IS OLD.prev_hash AND NEW.hash IS OLD.hash)
BEGIN
    SELECT RAISE(ABORT, 'the journal is append-only');
END;
"""

# A card signature's row without what the receipt holds: the provider's signature as its bytes
# (`signature_raw`) and its signed input without the receipt's UID (`input_uid` 1; see
# signatures.py), ~65 bytes a card sale; and a print job printed in the second it was queued
# keeps `printed_at` '' (print_jobs.py), 25 bytes a receipt. A file of this schema is not for
# an older agent.
_SCHEMA_15 = """
ALTER TABLE payment_signatures ADD COLUMN input_uid INTEGER CHECK (input_uid IS NULL OR input_uid = 1);
ALTER TABLE payment_signatures ADD COLUMN signature_raw BLOB;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, _SCHEMA_1),
    Migration(2, _SCHEMA_2),
    Migration(3, _SCHEMA_3),
    Migration(4, _SCHEMA_4),
    Migration(5, _SCHEMA_5),
    Migration(6, _SCHEMA_6),
    Migration(7, _SCHEMA_7),
    Migration(8, _SCHEMA_8),
    Migration(9, _SCHEMA_9),
    Migration(10, _SCHEMA_10),
    Migration(11, _SCHEMA_11),
    Migration(12, _SCHEMA_12),
    Migration(13, _SCHEMA_13),
    Migration(14, _SCHEMA_14),
    Migration(15, _SCHEMA_15),
)


def schema_version(conn: sqlite3.Connection) -> int:
    """The last migration applied to this file (0 for a new file)."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def apply_migrations(
    conn: sqlite3.Connection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[int]:
    """Bring the schema up to date and return the versions applied now (empty when current).

    A file written by a newer agent is refused: this code cannot know what the newer schema means.
    """
    _check_sequence(migrations)
    latest = migrations[-1].version if migrations else 0
    current = schema_version(conn)
    if current > latest:
        raise SchemaTooNew(current, latest)
    applied: list[int] = []
    for migration in migrations:
        if migration.version <= schema_version(conn):
            continue
        _apply_one(conn, migration)
        applied.append(migration.version)
    return applied


def _apply_one(conn: sqlite3.Connection, migration: Migration) -> None:
    # executescript() commits any open transaction first, so BEGIN goes inside the script.
    script = (
        f"BEGIN IMMEDIATE;\n{migration.script}\nPRAGMA user_version = {migration.version};\nCOMMIT;"
    )
    try:
        conn.executescript(script)
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        # Another process may have applied the same version between our check and our BEGIN.
        if schema_version(conn) >= migration.version:
            return
        raise


def _check_sequence(migrations: tuple[Migration, ...]) -> None:
    expected = list(range(1, len(migrations) + 1))
    if [m.version for m in migrations] != expected:
        raise ValueError(f"migration versions must be 1..{len(migrations)} in order")
