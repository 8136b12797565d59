"""The sandbox's food-service ledger over real loopback HTTP: 8.6 slips get MARKs and stay open
per table; a cancellation settles them; a catering receipt (11.1, SpecialInvoiceCategory 12)
closes them and is refused when it connects an unknown, cancelled or already-closed 8.6."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from agent.sandbox.server import SandboxServer
from tests.conftest import SANDBOX_KEY, SANDBOX_VAT, invoice_document
from tests.sandbox.test_provider import post

Body = dict[str, Any]


def order(number: int, table: str = "5", *, gross: str = "10.00", **extra: Any) -> Body:
    net = (Decimal(gross) / Decimal("1.13")).quantize(Decimal("0.01"))
    vat = Decimal(gross) - net
    document = invoice_document(
        number, series="ΔΠΕ", lines=[(str(net), str(vat), gross, 2)], payments=[]
    )
    document.pop("PaymentDetails")
    document["InvoiceTypeCode"] = "8.6"
    document["DistributionDetails"] = {"InternalDocumentId": f"8.6_ΔΠΕ_{number}", "salesman": "A"}
    document["tableId"] = table
    document["totalCancelDeliveryOrders"] = False
    return {**document, **extra}


def cancel(number: int, marks: list[int], table: str = "5") -> Body:
    document = order(number, table, gross="0.00", totalCancelDeliveryOrders=True)
    document["multipleConnectedMarks"] = marks
    document["Details"][0]["VatCategoryCode"] = 8
    return document


def close(number: int, marks: list[int], gross: str = "10.00") -> Body:
    net = (Decimal(gross) / Decimal("1.13")).quantize(Decimal("0.01"))
    document = invoice_document(number, lines=[(str(net), str(Decimal(gross) - net), gross, 2)])
    document["SpecialInvoiceCategory"] = 12
    document["multipleConnectedMarks"] = marks
    return document


def mark_of(response: httpx.Response) -> int:
    assert response.status_code == 201, response.text
    return int(response.json()["mark"])


def ledger(server: SandboxServer, table: str | None = None) -> dict[int, tuple[str, int | None]]:
    params = {"table": table} if table else None
    rows = httpx.get(server.base_url + "/_sandbox/orders", params=params).json()["orders"]
    return {row["mark"]: (row["state"], row["settled_by"]) for row in rows}


def refusal(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    return " ".join(error["value"] for error in response.json()["myDataErrors"])


def test_orders_stay_open_per_table_until_a_catering_receipt_closes_them(
    sandbox: SandboxServer,
) -> None:
    first = mark_of(post(sandbox, "/Invoice/json", order(1)))
    second = mark_of(post(sandbox, "/Invoice/json", order(2, gross="5.00")))
    other_table = mark_of(post(sandbox, "/Invoice/json", order(3, table="9")))
    assert ledger(sandbox, "5") == {first: ("open", None), second: ("open", None)}

    receipt = mark_of(post(sandbox, "/Invoice/json", close(1, [first, second], "15.00")))
    assert ledger(sandbox, "5") == {first: ("closed", receipt), second: ("closed", receipt)}
    assert ledger(sandbox)[other_table] == ("open", None)


def test_a_closing_receipt_may_not_connect_unknown_or_closed_orders(sandbox: SandboxServer) -> None:
    first = mark_of(post(sandbox, "/Invoice/json", order(1)))
    unknown = refusal(post(sandbox, "/Invoice/json", close(1, [first + 1000])))
    assert "is not an 8.6 order slip of this issuer" in unknown
    mark_of(post(sandbox, "/Invoice/json", close(2, [first])))
    again = refusal(post(sandbox, "/Invoice/json", close(3, [first])))
    assert f"8.6 {first} is already closed" in again
    # A food-service 11.1 without order slips is a plain sale at the counter (category 12, as
    # the provider's QA food-service receipt): it connects nothing and is accepted.
    assert post(sandbox, "/Invoice/json", close(4, [])).status_code == 201


def test_a_resent_close_is_a_duplicate_not_a_refusal(sandbox: SandboxServer) -> None:
    first = mark_of(post(sandbox, "/Invoice/json", order(1)))
    receipt = mark_of(post(sandbox, "/Invoice/json", close(1, [first])))
    resent = post(sandbox, "/Invoice/json", close(1, [first]))
    assert resent.status_code == 409 and resent.json()["mark"] == receipt


def test_cancellation_settles_the_named_orders_of_the_same_table(sandbox: SandboxServer) -> None:
    first = mark_of(post(sandbox, "/Invoice/json", order(1)))
    second = mark_of(post(sandbox, "/Invoice/json", order(2)))
    elsewhere = mark_of(post(sandbox, "/Invoice/json", order(3, table="9")))
    wrong_table = refusal(post(sandbox, "/Invoice/json", cancel(4, [elsewhere])))
    assert "belongs to table 9, not 5" in wrong_table

    cancelled_by = mark_of(post(sandbox, "/Invoice/json", cancel(4, [second])))
    book = ledger(sandbox, "5")
    assert book[second] == ("cancelled", cancelled_by)
    assert book[cancelled_by] == ("cancellation", None)
    assert f"8.6 {second} is already cancelled" in refusal(
        post(sandbox, "/Invoice/json", close(1, [first, second]))
    )
    assert "is not an 8.6 order slip" in refusal(
        post(sandbox, "/Invoice/json", close(2, [first, cancelled_by]))
    )
    mark_of(post(sandbox, "/Invoice/json", close(3, [first])))


def test_an_order_slip_needs_its_table(sandbox: SandboxServer) -> None:
    document = order(1)
    document.pop("tableId")
    assert "required on an 8.6" in refusal(post(sandbox, "/Invoice/json", document))


def test_plain_receipts_connecting_other_marks_are_untouched(sandbox: SandboxServer) -> None:
    plain = invoice_document(1)
    plain["multipleConnectedMarks"] = [400000000999999]  # e.g. an 8.4 elsewhere
    assert post(sandbox, "/Invoice/json", plain).status_code == 201


def test_an_order_stays_connectable_until_the_tables_receipts_cover_it(
    sandbox: SandboxServer,
) -> None:
    """QA TC 08: two receipts of 40.00 connect the same two 8.6 of 40.00; the first leaves
    them open, the second (the receipts now cover them) closes them."""
    first = mark_of(post(sandbox, "/Invoice/json", order(1, gross="40.00")))
    second = mark_of(post(sandbox, "/Invoice/json", order(2, gross="40.00")))
    mark_of(post(sandbox, "/Invoice/json", close(1, [first, second], "40.00")))
    assert ledger(sandbox, "5") == {first: ("open", None), second: ("open", None)}
    rest = mark_of(post(sandbox, "/Invoice/json", close(2, [first, second], "40.00")))
    assert ledger(sandbox, "5") == {first: ("closed", rest), second: ("closed", rest)}
    again = refusal(post(sandbox, "/Invoice/json", close(3, [first], "1.00")))
    assert "is already closed" in again


def test_a_receipt_may_not_connect_orders_of_two_tables(sandbox: SandboxServer) -> None:
    here = mark_of(post(sandbox, "/Invoice/json", order(1, table="5")))
    there = mark_of(post(sandbox, "/Invoice/json", order(2, table="9")))
    refused = refusal(post(sandbox, "/Invoice/json", close(1, [here, there], "20.00")))
    assert "connects 8.6 of tables" in refused


def open_orders(server: SandboxServer, page: int = 1) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/invoice/getopenorderdocuments/{SANDBOX_VAT}/{page}/",
        headers={"APIKey": SANDBOX_KEY},
    )


def test_the_open_orders_list_pages_what_is_open_and_drops_the_newest_under_its_fault(
    sandbox_factory: Callable[..., SandboxServer],
) -> None:
    """Open 8.6 (returns too, never cancellations nor what a receipt closed), by MARK, in pages
    with NextPage; `open_orders_drops` leaves the newest out; the API key and VAT are checked."""
    server = sandbox_factory(page_size=2)
    first = mark_of(post(server, "/Invoice/json", order(1)))
    second = mark_of(post(server, "/Invoice/json", order(2, gross="4.00")))
    third = mark_of(post(server, "/Invoice/json", order(3, table="9")))
    mark_of(post(server, "/Invoice/json", cancel(4, [second])))
    closed = mark_of(post(server, "/Invoice/json", order(5, table="7")))
    mark_of(post(server, "/Invoice/json", close(6, [closed])))
    fourth = mark_of(post(server, "/Invoice/json", order(7, table="9")))

    page_one = open_orders(server)
    assert page_one.status_code == 200 and page_one.headers["NextPage"] == "2"
    page_two = open_orders(server, 2)
    assert "NextPage" not in page_two.headers
    items = page_one.json() + page_two.json()
    assert [(item["Mark"], item["TableId"]) for item in items] == [
        (first, "5"),
        (third, "9"),
        (fourth, "9"),
    ]
    assert items[0]["InternalDocumentId"] == "8.6_ΔΠΕ_1" and items[0]["Uid"]
    assert items[0]["DateIssued"] and Decimal(str(items[0]["TotalGrossValue"])) == Decimal("10")

    httpx.post(server.base_url + "/_sandbox/faults", json={"mode": "open_orders_drops"})
    dropped = open_orders(server).json() + open_orders(server, 2).json()
    assert [item["Mark"] for item in dropped] == [first, third]
    other = httpx.get(
        f"{server.base_url}/invoice/getopenorderdocuments/EL123456783/1/",
        headers={"APIKey": SANDBOX_KEY},
    )
    assert other.status_code == 401
    nokey = httpx.get(f"{server.base_url}/invoice/getopenorderdocuments/{SANDBOX_VAT}/1/")
    assert nokey.status_code == 401
