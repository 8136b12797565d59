"""X and Z reports over random days of mixed sales in a real store (cash, card with tips on two
terminals, IRIS, six VAT rates, lines with and without discounts, 11.4 and 8.5 refunds, an 8.4 with its connected 11.1, order slips left
open or closed by a receipt, voided reservations, receipts offline, pending or rejected): the
totals per VAT category (discounts given included) and per payment method (with their count) equal the sums of that day's documents to the
cent, the first and last numbers and the open tables are right, and Z numbers run on without
gaps, each covering what came after the last.

Documents are built by the agent's own fiscal rules (priced lines, the provider payloads) and
written through the store's numbering; the expected sums are taken from what each test document
was made of, not from the payloads the report reads."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import offline_store as store
from agent.clock import ATHENS
from agent.config import AgentConfig
from agent.core.closings import ClosingRequest, ClosingService, day_report
from agent.core.day_report import DayReport, Flow
from agent.core.runtime import Runtime
from agent.elise.client import EliseClient
from agent.fiscal.document_builder import (
    document_identity,
    identity_uid,
    pos_payload,
    price_lines,
    receipt_payload,
    series_for,
)
from agent.fiscal.orders import order_payload
from agent.fiscal.provider_payloads import PaymentEntry, pos_card_entries
from agent.fiscal.receipt_model import (
    Discount,
    PosReceiptRequest,
    ReceiptLine,
    ReceiptRequest,
    SaleLine,
)
from agent.json_codec import dumps, loads
from agent.secrets import ApiKey
from offline_store.journal import journal_entries
from tests.fiscal.fixtures import shop_config

DAY = datetime(2026, 3, 10, 8, 0, tzinfo=ATHENS)
CASH, CARD, IRIS = 3, 7, 8
TERMINALS = ("T1", "T2")
ISSUED = ("accepted", "delayed", "pending")


@dataclass
class Expected:
    """What the test's documents add up to, per flow (sales, refunds)."""

    vat: dict[str, dict[int, list[Decimal]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [Decimal(0)] * 3))
    )
    methods: dict[str, dict[int, list[Decimal]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [Decimal(0)] * 3))
    )
    terminals: dict[str, dict[str, list[Decimal]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [Decimal(0)] * 3))
    )
    numbers: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    voided: int = 0
    open_slips: int = 0
    open_balance: Decimal = Decimal(0)

    def pay(self, flow: str, entry: PaymentEntry) -> None:
        line = self.methods[flow][entry.method]
        line[0] += entry.amount
        line[1] += entry.tip
        line[2] += 1
        if entry.method == CARD and entry.terminal_id:
            card = self.terminals[flow][entry.terminal_id]
            card[0] += entry.amount
            card[1] += entry.tip
            card[2] += 1


line_st = st.builds(
    lambda qty, cents, cat, percent: SaleLine(
        description="Είδος",
        quantity=Decimal(qty),
        unit_price=Decimal(cents) / 100,
        vat_category=cat,
        discount=None if percent is None else Discount(percent=Decimal(percent)),
    ),
    st.integers(1, 4),
    st.integers(1, 5000),
    st.sampled_from([1, 2, 3, 4, 5, 6]),
    st.one_of(st.none(), st.integers(1, 50)),
)
sale_st = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(
            ["cash", "card", "iris", "pos_then_11", "refund_cash", "pos_refund", "void", "table"]
        ),
        "lines": st.lists(line_st, min_size=1, max_size=4),
        "tip": st.integers(0, 300),
        "terminal": st.sampled_from(TERMINALS),
        "state": st.sampled_from(["accepted", "accepted", "delayed", "pending", "rejected"]),
    }
)


class Register:
    """A real store and the closing service on a runtime whose clock the test moves."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.now = DAY
        self.conn = store.open_database(config.database_path, now=DAY)
        key = ApiKey("k" * 32)
        self.client = EliseClient(config.provider, issuer_vat=config.issuer.vat, api_key=key)
        runtime = Runtime(
            config=config, api_key=key, conn=self.conn, client=self.client, clock=lambda: self.now
        )
        self.closings = ClosingService(runtime)
        self.expected = Expected()
        self.sequence = 0

    def close(self) -> None:
        asyncio.run(self.client.aclose())
        self.conn.close()

    def write(self, type_code: str, payload: dict | None, total: Decimal, state: str) -> int:
        self.sequence += 1
        self.now += timedelta(minutes=3)
        series = series_for(self.config, type_code)
        body = None if payload is None else dumps(payload)

        def build(number: int) -> store.NewDocument:
            identity = document_identity(type_code, series, number, self.now)
            return store.NewDocument(
                request_id=f"r{self.sequence}",
                request_hash=f"h{self.sequence}",
                kind=store.DocumentKind.POS_RECEIPT
                if type_code.startswith("8.")
                else store.DocumentKind.RECEIPT,
                type_code=type_code,
                issued_at=self.now,
                uid=identity_uid(self.config, identity),
                internal_id=identity.internal_id,
                request_json="{}",
                total_amount=total,
                payload=body,
                reserved_until=None if body else self.now + timedelta(minutes=5),
            )

        with store.transaction(self.conn):
            doc = store.insert_document(self.conn, series, build, now=self.now)
            self._settle(doc.id, state)
        numbers = self.expected.numbers.setdefault((type_code, series), [doc.number, doc.number])
        numbers[1] = doc.number
        return doc.id

    def _settle(self, doc_id: int, state: str) -> None:
        match state:
            case "reserved":
                store.void_reservation(self.conn, doc_id, reason="declined", now=self.now)
            case "accepted":
                store.mark_accepted(
                    self.conn,
                    doc_id,
                    mark=10_000 + doc_id,
                    authentication_code=None,
                    qr_url=None,
                    now=self.now,
                )
            case "delayed":
                store.mark_delayed(
                    self.conn,
                    doc_id,
                    code=1,
                    due_at=self.now + timedelta(days=1),
                    next_attempt_at=None,
                    error="offline",
                    now=self.now,
                )
            case "rejected":
                store.mark_rejected(self.conn, doc_id, error="bad data", now=self.now)

    def sale(self, sale: dict) -> None:
        kind, state = sale["kind"], sale["state"]
        if kind == "void":
            self.write("11.1", None, Decimal("1.00"), "reserved")
            self.expected.voided += 1
            return
        if kind == "table":
            self._table(sale)
            return
        priced = price_lines(sale["lines"], prices_include_vat=True)
        gross = priced.totals.gross
        tip = Decimal(sale["tip"]) / 100
        flow = "refunds" if kind in ("refund_cash", "pos_refund") else "sales"
        card = PaymentEntry(CARD, gross, tip, sale["terminal"], f"tx{self.sequence}", "in", "sig")
        if kind in ("pos_then_11", "pos_refund"):
            pos_type = "8.4" if flow == "sales" else "8.5"
            request = PosReceiptRequest.model_validate(
                {
                    "request_id": "p",
                    "type": pos_type,
                    "payments": [
                        {
                            "method": CARD,
                            "amount": gross,
                            "tip": tip,
                            "terminal_id": sale["terminal"],
                            "transaction_id": "tx",
                        }
                    ],
                }
            )
            number = store.last_numbers(self.conn).get(series_for(self.config, pos_type), 0) + 1
            identity = document_identity(
                pos_type, series_for(self.config, pos_type), number, self.now
            )
            payload = pos_payload(self.config, identity, request, [card])
            self.write(pos_type, payload, gross, state)
            if state in ISSUED:
                self.expected.pay(flow, card)
            payments = pos_card_entries(loads(dumps(payload)), f"POS {number}")
        else:
            payments = {
                "card": [card],
                "iris": [
                    PaymentEntry(IRIS, gross, tip, "M1", "ar", "in", "sig", remarks="IRIS E2E")
                ],
            }.get(kind, [PaymentEntry(CASH, gross, tip)])
            if state in ISSUED:
                self.expected.pay(flow, payments[0])
        type_code = "11.4" if flow == "refunds" else "11.1"
        self._retail(type_code, sale["lines"], priced, payments, state, flow)

    def _table(self, sale: dict) -> None:
        """An order slip (8.6) for a table, never a sale; closed by a cash 11.1 when the tip
        is odd (the closing receipt is a sale), else left open."""
        priced = price_lines(sale["lines"], prices_include_vat=True)
        request = ReceiptRequest.model_validate(
            {
                "request_id": "o",
                "lines": [line.model_dump() for line in sale["lines"]],
                "payments": [{"method": CASH, "amount": priced.totals.gross}],
            }
        )
        series = series_for(self.config, "8.6")
        number = store.last_numbers(self.conn).get(series, 0) + 1
        identity = document_identity("8.6", series, number, self.now)
        document = receipt_payload(self.config, identity, request, priced, [])
        payload = order_payload(document, table="12", waiter="Νίκος", is_return=False)
        order_id = self.write("8.6", payload, priced.totals.gross, sale["state"])
        order = store.get_document(self.conn, order_id)
        assert order is not None
        with store.transaction(self.conn):
            store.record_order(
                self.conn,
                request_id=order.request_id,
                table_id="12",
                waiter="Νίκος",
                kind=store.OrderKind.ORDER,
                now=self.now,
            )
        if sale["tip"] % 2:
            closing = {**sale, "kind": "cash", "state": "accepted", "tip": 0}
            self.sale(closing)
            with store.transaction(self.conn):
                store.record_settlement(
                    self.conn,
                    order_request_ids=[order.request_id],
                    by_request_id=f"r{self.sequence}",
                    settlement="close",
                    now=self.now,
                )
        elif sale["state"] != "rejected":
            self.expected.open_slips += 1
            self.expected.open_balance += priced.totals.gross

    def _retail(self, type_code, lines, priced, payments, state, flow) -> None:
        request = ReceiptRequest.model_validate(
            {
                "request_id": "x",
                "type": type_code,
                "lines": [line.model_dump() for line in lines],
                "payments": [{"method": CASH, "amount": priced.totals.gross}],
                "correlated_marks": [1] if type_code == "11.4" else [],
            }
        )
        series = series_for(self.config, type_code)
        number = store.last_numbers(self.conn).get(series, 0) + 1
        identity = document_identity(type_code, series, number, self.now)
        payload = receipt_payload(self.config, identity, request, priced, payments)
        self.write(type_code, payload, priced.totals.gross, state)
        if state in ISSUED:
            for bucket in priced.vat_buckets:
                sums = self.expected.vat[flow][bucket.vat_category]
                sums[0] += bucket.net
                sums[1] += bucket.vat
            for line in priced.lines:
                given = sum((a.gross for a in line.allowances), Decimal(0))
                self.expected.vat[flow][line.vat_category][2] += given


@pytest.fixture
def register(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Register]:
    yield from _register(tmp_path_factory.mktemp("day"))


def _register(path: Path, config: AgentConfig | None = None) -> Iterator[Register]:
    shop = Register(config or shop_config(state_dir=str(path)))
    try:
        yield shop
    finally:
        shop.close()


def check_flow(flow: Flow, expected: Expected, name: str) -> None:
    by_vat = {line.category: [line.net, line.vat, line.discount] for line in flow.by_vat}
    assert by_vat == {cat: sums for cat, sums in expected.vat[name].items()}
    assert flow.discount == sum((line.discount for line in flow.by_vat), Decimal(0))
    for line in flow.by_vat:
        assert line.gross == line.net + line.vat
    assert flow.gross == sum((line.gross for line in flow.by_vat), Decimal(0))
    by_method = {
        line.method: [line.amount, line.tips, Decimal(line.payments)] for line in flow.by_method
    }
    assert by_method == {method: sums for method, sums in expected.methods[name].items()}
    terminals = {
        t.terminal_id: [t.amount, t.tips, Decimal(t.transactions)] for t in flow.card_terminals
    }
    assert terminals == {name: sums for name, sums in expected.terminals[name].items()}


def check_report(report: DayReport, expected: Expected) -> None:
    check_flow(report.sales, expected, "sales")
    check_flow(report.refunds, expected, "refunds")
    numbers = {(s.type_code, s.series): [s.first, s.last] for s in report.documents}
    assert numbers == expected.numbers
    assert len(report.voided_reservations) == expected.voided
    tables = report.open_tables
    assert (tables.order_slips, tables.balance) == (expected.open_slips, expected.open_balance)
    assert tables.tables == (1 if expected.open_slips else 0)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sales=st.lists(sale_st, min_size=0, max_size=12),
    split=st.integers(0, 12),
)
def test_x_and_z_add_up_to_the_days_documents(tmp_path_factory, sales, split) -> None:
    for shop in _register(tmp_path_factory.mktemp("day")):
        first, second = sales[:split], sales[split:]
        for sale in first:
            shop.sale(sale)
        z1 = asyncio.run(shop.closings.close(ClosingRequest(request_id="z-1"))).body
        for sale in second:
            shop.sale(sale)
        x = day_report(shop.conn, DAY.date(), shop.now)
        check_report(x, shop.expected)
        z2 = asyncio.run(shop.closings.close(ClosingRequest(request_id="z-2"))).body
        assert (z1.number, z2.number) == (1, 2)
        assert z2.after_receipt_id == z1.last_receipt_id
        # The two closings together are the day.
        for part in ("sales", "refunds"):
            x_flow: Flow = getattr(x, part)
            total = getattr(z1, part).gross + getattr(z2, part).gross
            assert total == x_flow.gross
            for method in x_flow.by_method:
                z_sum = sum(
                    (
                        m.amount
                        for z in (z1, z2)
                        for m in getattr(z, part).by_method
                        if m.method == method.method
                    ),
                    Decimal(0),
                )
                assert z_sum == method.amount


def test_a_closing_is_idempotent_and_kept_as_made(register: Register) -> None:
    register.sale(
        {
            "kind": "cash",
            "lines": [
                ReceiptLine(
                    description="Καφές",
                    quantity=Decimal(1),
                    unit_price=Decimal("2.50"),
                    vat_category=2,
                )
            ],
            "tip": 0,
            "terminal": "T1",
            "state": "accepted",
        }
    )
    made = asyncio.run(register.closings.close(ClosingRequest(request_id="z")))
    again = asyncio.run(register.closings.close(ClosingRequest(request_id="z")))
    assert made.created and not again.created and again.body == made.body
    assert register.closings.get(1) == made.body
    [entry] = [e for e in journal_entries(register.conn, after=0) if e.event == "closing.z"]
    detail = loads(entry.detail)
    assert detail["number"] == 1 and detail["totals"]["sales"]["gross"] == "2.50"
    assert detail["journal_seq"] == entry.seq - 1


def test_a_closing_is_refused_out_of_order_by_the_database(register: Register) -> None:
    with store.transaction(register.conn), pytest.raises(Exception, match="next Z number"):
        register.conn.execute(
            "INSERT INTO closings (number, request_id, closed_at, after_document_id, "
            "last_document_id, after_kick_id, last_kick_id, journal_seq, report) "
            "VALUES (2, 'r', '2026-03-10T10:00:00+02:00', 0, 0, 0, 0, 0, '{}')"
        )


def test_the_automatic_closing_comes_once_a_day_at_its_time_and_only_after_sales(
    tmp_path: Path,
) -> None:
    config = shop_config(state_dir=str(tmp_path), closing={"auto_at": "22:30"})
    for shop in _register(tmp_path, config):
        shop.now = DAY.replace(hour=22, minute=0)
        assert asyncio.run(shop.closings.auto_close()) is None, "not yet its time"
        shop.now = DAY.replace(hour=22, minute=30)
        assert asyncio.run(shop.closings.auto_close()) is None, "nothing issued: no closing"
        shop.sale(
            {
                "kind": "cash",
                "lines": [
                    ReceiptLine(
                        description="Καφές",
                        quantity=Decimal(1),
                        unit_price=Decimal("2.50"),
                        vat_category=2,
                    )
                ],
                "tip": 0,
                "terminal": "T1",
                "state": "accepted",
            }
        )
        made = asyncio.run(shop.closings.auto_close())
        assert made is not None and made.created and made.body.number == 1
        again = asyncio.run(shop.closings.auto_close())
        assert again is not None and not again.created and again.body == made.body
