"""The sandbox's document list (getdocuments) over real loopback HTTP: pages of the configured
size with a NextPage header, the day range, the API key, and the list faults."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx

from agent.json_codec import loads
from agent.sandbox.server import SandboxServer
from tests.conftest import SANDBOX_KEY, SANDBOX_VAT
from tests.sandbox.test_provider import post

LIST = f"/api/invoice/getdocuments/{SANDBOX_VAT}"


def listed(server: SandboxServer, page: int, **query: str) -> httpx.Response:
    params = {"From": "20260302", "To": "20260302", **query}
    return httpx.get(
        f"{server.base_url}{LIST.removeprefix('/api')}/{page}/",
        params=params,
        headers={"APIKey": SANDBOX_KEY},
    )


def test_pages_of_the_configured_size_follow_next_page(
    sandbox_factory: Callable[..., SandboxServer], make_invoice: Callable[..., bytes]
) -> None:
    server = sandbox_factory(page_size=2)
    marks = [
        loads(post(server, "/Invoice/json", make_invoice(n)).content)["mark"] for n in (1, 2, 3)
    ]
    post(server, "/Invoice/json", make_invoice(4, date_issued="2026-03-03T09:00:00"))
    first = listed(server, 1)
    assert first.status_code == 200 and first.headers["NextPage"] == "2"
    second = listed(server, 2)
    assert "NextPage" not in second.headers
    items = loads(first.content) + loads(second.content)
    assert [item["Mark"] for item in items] == marks  # the 3rd of March is another day
    assert items[0]["Number"] == "1" and items[0]["InternalDocumentId"]
    assert items[0]["TotalGrossValue"] > Decimal(0) and items[0]["Uid"]
    both_days = listed(server, 1, To="20260303")
    assert both_days.headers["NextPage"] == "2" and loads(listed(server, 2, To="20260303").content)


def test_the_list_faults_drop_the_newest_or_change_its_total(
    sandbox: SandboxServer, sandbox_admin: httpx.Client, make_invoice: Callable[..., bytes]
) -> None:
    for number in (1, 2):
        post(sandbox, "/Invoice/json", make_invoice(number))
    honest = loads(listed(sandbox, 1).content)
    sandbox_admin.post("/_sandbox/faults", json={"mode": "list_drops"})
    assert loads(listed(sandbox, 1).content) == honest[:1]
    sandbox_admin.post("/_sandbox/faults", json={"mode": "list_total"})
    changed = loads(listed(sandbox, 1).content)
    assert changed[1]["TotalGrossValue"] == honest[1]["TotalGrossValue"] + Decimal("1.00")
    # A lost document is no longer listed, and is registered anew when sent again.
    sandbox_admin.post("/_sandbox/faults", json={"mode": "ok"})
    assert (
        sandbox_admin.post("/_sandbox/documents/lose", json={"uid": honest[1]["Uid"]}).status_code
        == 200
    )
    assert loads(listed(sandbox, 1).content) == honest[:1]
    assert post(sandbox, "/Invoice/json", make_invoice(2)).status_code == 201


def test_refusals(sandbox: SandboxServer) -> None:
    assert listed(sandbox, 1, From="2026-03-02").status_code == 400
    other = httpx.get(
        f"{sandbox.base_url}/invoice/getdocuments/EL123456783/1/?From=20260302&To=20260302",
        headers={"APIKey": SANDBOX_KEY},
    )
    assert other.status_code == 401
    nokey = httpx.get(
        f"{sandbox.base_url}/invoice/getdocuments/{SANDBOX_VAT}/1/?From=20260302&To=20260302"
    )
    assert nokey.status_code == 401
