"""API fuzzing: malformed and adversarial bodies against a real daemon.

One daemon and one sandbox run as processes for the whole module. Hypothesis sends more than
2,000 bodies to POST /v1/receipts, /v1/pos-receipts and /v1/payments/sign: random JSON, valid
requests with at least one breaking mutation (wrong types, huge numbers, negative/NaN/Infinity
money, unknown or missing fields, bad codes, Greek and emoji text in the wrong place, mismatched
totals, unknown signatures), invalid UTF-8, deep nesting, non-objects and a 10 MB body.

For every answer: never a 5xx, never a hang (the client times out), always a 4xx whose body
names the problem (`error.code`, `error.message`, and `error.fields` for a 422). And the store
must be unchanged afterwards: same documents, same numbering, same journal.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import offline_store as store
from agent.tools.local_stack import LocalStack, StackSettings

pytestmark = pytest.mark.e2e

CLIENT_TIMEOUT_S = 10.0
FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ENDPOINTS = ("/v1/receipts", "/v1/pos-receipts", "/v1/payments/sign")


# -- the stack and the store snapshot ----------------------------------------------------------


def store_snapshot(stack: LocalStack) -> dict[str, Any]:
    conn = store.open_database(stack.state_dir / "pos-agent.sqlite3", read_only=True)
    try:
        return {
            "documents": conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0],
            "numbers": store.last_numbers(conn),
            "journal": conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0],
            "requests": conn.execute("SELECT COUNT(*) FROM api_requests").fetchone()[0],
            "signatures": conn.execute("SELECT COUNT(*) FROM payment_signatures").fetchone()[0],
            "print_jobs": conn.execute("SELECT COUNT(*) FROM print_jobs").fetchone()[0],
        }
    finally:
        conn.close()


class Fuzzed:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.client = stack.client(timeout_s=CLIENT_TIMEOUT_S)
        self.sent = 0
        self.baseline: dict[str, Any] = {}

    def post(self, path: str, content: bytes, content_type: str = "application/json") -> None:
        self.sent += 1
        try:
            response = self.client.post(
                path, content=content, headers={"content-type": content_type}
            )
        except httpx.TimeoutException:  # pragma: no cover - the failure we are looking for
            pytest.fail(f"{path} hung on a {len(content)}-byte body: {content[:200]!r}")
        check_error_answer(path, content, response)

    def assert_store_unchanged(self) -> None:
        assert store_snapshot(self.stack) == self.baseline


def check_error_answer(path: str, content: bytes, response: httpx.Response) -> None:
    context = f"{path} {response.status_code} for {content[:300]!r}: {response.text[:500]}"
    assert 400 <= response.status_code < 500, context
    body = response.json()
    error = body.get("error")
    assert isinstance(error, dict), context
    assert isinstance(error.get("code"), str) and error["code"], context
    assert isinstance(error.get("message"), str) and error["message"], context
    if response.status_code == 422:
        fields = error.get("fields")
        assert isinstance(fields, list) and fields, context
        for problem in fields:
            assert isinstance(problem.get("path"), str) and problem["path"], context
            assert isinstance(problem.get("message"), str) and problem["message"], context


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    stack = LocalStack(
        root,
        StackSettings(
            printer_backend="dummy",
            preview_dir=False,
            sync_interval_s=3600.0,
            probe_interval_s=3600.0,
        ),
    ).start()
    fuzzed = Fuzzed(stack)
    try:
        # Some history first, so "numbering identical" compares real counters.
        for index in range(2):
            response = fuzzed.client.post("/v1/receipts", json=valid_receipt(f"seed-{index}"))
            assert response.status_code == 201, response.text
        fuzzed.baseline = store_snapshot(stack)
        yield fuzzed
    finally:
        fuzzed.client.close()
        stack.stop()


# -- valid bodies (each fuzz case breaks them) -------------------------------------------------


def valid_receipt(request_id: str = "fz-1") -> dict[str, Any]:
    return {
        "request_id": request_id,
        "lines": [
            {"description": "Καφές ☕", "quantity": 2, "unit_price": 2.5, "vat_category": 2},
            {"description": "Τυρόπιτα", "quantity": 1, "unit_price": 3.2, "vat_category": 1},
        ],
        "payments": [{"method": 3, "amount": 8.2}],
        "delivery": {"print": False},
    }


def card_payment() -> dict[str, Any]:
    return {"method": 7, "amount": 8.2, "terminal_id": "T1", "transaction_id": "tx-1"}


def valid_pos_receipt() -> dict[str, Any]:
    return {"request_id": "fz-pos", "type": "8.4", "payments": [card_payment()]}


def valid_sign() -> dict[str, Any]:
    return {
        "request_id": "fz-sign",
        "terminal_id": "T1",
        "amount": 8.2,
        "document_type": "11.1",
        "lines": valid_receipt()["lines"],
    }


# -- building blocks -------------------------------------------------------------------------

NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "Ελληνικά με τόνους: άέήίόύώ ΐΰ",
        "😀🧾💶" * 40,
        "\u0000nul",
        "line\nbreak",
        "\u202eRTL override",
        "\ufeffbom",
        "a" * 10_000,
        "'; DROP TABLE documents; --",
        "../../etc/passwd",
        "%s%n%x",
    ]
)
WRONG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.just(10**200),
    st.floats(allow_nan=True, allow_infinity=True),
    NASTY_TEXT,
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
BAD_MONEY = st.one_of(
    st.sampled_from(
        [
            -1,
            -0.01,
            0.001,
            1.005,
            math.nan,
            math.inf,
            -math.inf,
            1e400,
            10**15,
            "12,50",
            "NaN",
            "",
            True,
            None,
            [],
            {},
        ]
    ),
    st.integers(max_value=-1),
    st.floats(max_value=-0.001, allow_nan=False),
)

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    NASTY_TEXT,
)
RANDOM_JSON = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                ["request_id", "lines", "payments", "amount", "type", "x", "méthode", "🧾"]
            )
            | st.text(max_size=8),
            children,
            max_size=5,
        ),
    ),
    max_leaves=20,
)


def encode(body: Any) -> bytes:
    """Standard JSON, except that NaN and Infinity come out as their (non-standard) tokens."""
    return json.dumps(body, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


Mutation = Callable[[dict[str, Any]], None]


def _line(body: dict[str, Any]) -> dict[str, Any]:
    return body["lines"][0]


def _payment(body: dict[str, Any]) -> dict[str, Any]:
    return body["payments"][0]


def breaking_receipt_mutations() -> st.SearchStrategy[Mutation]:
    """Each of these makes a /v1/receipts body invalid on its own."""

    def set_path(getter: Callable[[dict], dict], key: str, values: st.SearchStrategy) -> Any:
        return values.map(lambda v: lambda body: getter(body).__setitem__(key, v))

    root = lambda body: body  # noqa: E731
    return st.one_of(
        set_path(_line, "unit_price", BAD_MONEY),
        set_path(_line, "quantity", st.sampled_from([0, -1, 0.0001, math.nan, "two", None])),
        set_path(_payment, "amount", BAD_MONEY),
        set_path(_payment, "amount", st.sampled_from([8.19, 8.21, 0.01, 999999.99])),
        set_path(_line, "vat_category", st.sampled_from([0, 8, 11, -1, 99, "x", 1.5, None])),
        set_path(_payment, "method", st.sampled_from([0, 9, -3, "cash", 3.5, None])),
        set_path(_line, "description", st.sampled_from(["", "a" * 301, "tab\there", "\x07"])),
        set_path(root, "request_id", st.sampled_from(["", "a b", "ΑΒΓ", "x" * 101, 17, None])),
        set_path(root, "lines", st.sampled_from([[], None, {}, "lines", [None], [[]]])),
        set_path(root, "payments", st.sampled_from([None, {}, "cash", [None], [1, 2]])),
        set_path(root, "type", st.sampled_from(["11.4", "8.4", "1.1", "", None])),
        set_path(root, "delivery", st.sampled_from([{"email": True}, {"mobile": True}, "yes"])),
        set_path(root, "customer", st.sampled_from([{"vat": "123456789"}, {"emails": ["x"]}])),
        set_path(_payment, "signature_id", st.sampled_from([10**9, -1, "sig"])),
        set_path(_payment, "terminal_id", st.sampled_from(["T1", "😀"])),
        st.builds(
            lambda key, value: lambda body: body.__setitem__(key, value),
            st.sampled_from(["unknown", "Lines", "total", "__proto__", "ΠΟΣΟ"]),
            WRONG_VALUES,
        ),
        st.builds(
            lambda key, value: lambda body: _line(body).__setitem__(key, value),
            st.sampled_from(["net", "vat", "discount", "😀"]),
            WRONG_VALUES,
        ),
        st.sampled_from(["request_id", "lines"]).map(lambda key: lambda body: body.pop(key)),
        st.sampled_from(["description", "quantity", "unit_price", "vat_category"]).map(
            lambda key: lambda body: _line(body).pop(key)
        ),
        st.sampled_from(["method", "amount"]).map(lambda key: lambda body: _payment(body).pop(key)),
        st.sampled_from(["request_id", "lines", "payments", "delivery"]).flatmap(
            lambda key: WRONG_VALUES.filter(lambda v: not isinstance(v, str | dict)).map(
                lambda v: lambda body: body.__setitem__(key, v)
            )
        ),
        st.integers(min_value=501, max_value=800).map(
            lambda n: lambda body: body.__setitem__("lines", [_line(body)] * n)
        ),
        st.integers(min_value=50, max_value=600).map(
            lambda depth: lambda body: body.__setitem__("customer", nested(depth))
        ),
        st.sampled_from([0, 7]).map(lambda cat: lambda body: _line(body).update(vat_category=cat)),
    )


def neutral_mutations() -> st.SearchStrategy[Mutation]:
    """Harmless on their own (Greek, emoji, long-but-legal text); mixed in with breaking ones."""
    return st.one_of(
        NASTY_TEXT.filter(lambda s: 0 < len(s.strip()) <= 300 and s.isprintable()).map(
            lambda text: lambda body: _line(body).__setitem__("description", text)
        ),
        st.just(lambda body: body["lines"].append(dict(_line(body)))),
        st.just(lambda body: None),
    )


def nested(depth: int) -> Any:
    value: Any = {"x": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


@st.composite
def broken_receipts(draw: st.DrawFn, base: Callable[[], dict[str, Any]]) -> bytes:
    body = base()
    mutations = [draw(breaking_receipt_mutations())]
    mutations += draw(st.lists(neutral_mutations() | breaking_receipt_mutations(), max_size=2))
    for mutate in draw(st.permutations(mutations)):
        # An earlier mutation may have removed what this one edits: the body stays broken.
        with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
            mutate(body)
    return encode(body)


@st.composite
def broken_pos_receipts(draw: st.DrawFn) -> bytes:
    body = valid_pos_receipt()
    breaking = st.one_of(
        st.sampled_from([1, 2, 3, 4, 5, 6, 8]).map(lambda m: ("method", m)),
        BAD_MONEY.map(lambda v: ("amount", v)),
        st.sampled_from([None, "", "x" * 51, 5]).map(lambda v: ("terminal_id", v)),
        st.sampled_from([None, "", 5, "x" * 201]).map(lambda v: ("transaction_id", v)),
        st.sampled_from([10**9, -1, "s"]).map(lambda v: ("signature_id", v)),
        WRONG_VALUES.map(lambda v: ("unknown_field", v)),
    )
    key, value = draw(breaking)
    body["payments"][0][key] = value
    top = draw(
        st.sampled_from(
            [None, ("type", "11.1"), ("type", "8.6"), ("payments", []), ("lines", []), ("x", 1)]
        )
    )
    if top is not None:
        body[top[0]] = top[1]
    if draw(st.booleans()):
        body.pop(draw(st.sampled_from(["request_id", "payments"])), None)
        body.setdefault("payments", [])
    return encode(body)


@st.composite
def broken_signs(draw: st.DrawFn) -> bytes:
    body = valid_sign()
    breaking = st.one_of(
        BAD_MONEY.map(lambda v: ("amount", v)),
        st.sampled_from([8.21, 100.0, 10**6]).map(lambda v: ("amount", v)),  # > receipt total
        st.sampled_from([None, "", "x" * 51, 1, "\x00"]).map(lambda v: ("terminal_id", v)),
        # 11.4 and 8.5 are signable (refunds), but 8.5 takes no lines
        st.sampled_from(["11.2", "8.5", "", None, 11.1]).map(lambda v: ("document_type", v)),
        st.sampled_from([[], None, "lines", [{}]]).map(lambda v: ("lines", v)),
        st.sampled_from([10**9, -5, "r"]).map(lambda v: ("receipt_id", v)),
        BAD_MONEY.map(lambda v: ("tip", v)),
        WRONG_VALUES.map(lambda v: ("unexpected", v)),
        st.sampled_from(["", "a b", None, 3]).map(lambda v: ("request_id", v)),
    )
    key, value = draw(breaking)
    body[key] = value
    if key == "receipt_id" and draw(st.booleans()):
        body.pop("lines")  # receipt_id alone: points at a receipt that does not exist
    if draw(st.booleans()):
        body["lines"] = body.get("lines") if isinstance(body.get("lines"), list) else []
        for line in body["lines"]:
            if isinstance(line, dict):
                line["description"] = draw(NASTY_TEXT.filter(lambda s: s.strip() != ""))
                break
    return encode(body)


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    """Bodies that are not a JSON object at all."""
    kind = draw(
        st.sampled_from(["utf8", "nesting", "nonobject", "garbage", "truncated", "surrogate"])
    )
    valid = encode(valid_receipt())
    if kind == "surrogate":  # escaped lone surrogates: valid JSON, not valid Unicode text
        body = valid_receipt()
        where = draw(st.sampled_from(["description", "key", "request_id"]))
        text = draw(st.sampled_from(["\ud800", "x\udfff", "\udc00\ud800"]))
        if where == "description":
            body["lines"][0]["description"] = text
        elif where == "key":
            body[text] = 1
        else:
            body["request_id"] = text
        return json.dumps(body).encode("ascii")
    if kind == "utf8":
        junk = draw(
            st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
        )
        cut = draw(st.integers(min_value=1, max_value=len(valid) - 1))
        return valid[:cut] + junk + valid[cut:]
    if kind == "nesting":
        depth = draw(st.integers(min_value=1000, max_value=200_000))
        opener = draw(st.sampled_from(["[", '{"a":']))
        return (opener * depth).encode()
    if kind == "nonobject":
        return encode(draw(st.one_of(JSON_SCALARS, st.lists(JSON_SCALARS, max_size=3))))
    if kind == "truncated":
        return valid[: draw(st.integers(min_value=0, max_value=len(valid) - 1))]
    return draw(st.binary(max_size=200))


# -- the tests ---------------------------------------------------------------------------------


def test_random_json_bodies(fuzz: Fuzzed) -> None:
    @settings(FUZZ_SETTINGS, max_examples=450)
    @given(path=st.sampled_from(ENDPOINTS), body=RANDOM_JSON)
    def run(path: str, body: Any) -> None:
        fuzz.post(path, encode(body))

    run()
    fuzz.assert_store_unchanged()


def test_broken_receipts(fuzz: Fuzzed) -> None:
    @settings(FUZZ_SETTINGS, max_examples=650)
    @given(content=broken_receipts(valid_receipt))
    def run(content: bytes) -> None:
        fuzz.post("/v1/receipts", content)

    run()
    fuzz.assert_store_unchanged()


def test_broken_pos_receipts(fuzz: Fuzzed) -> None:
    @settings(FUZZ_SETTINGS, max_examples=300)
    @given(content=broken_pos_receipts())
    def run(content: bytes) -> None:
        fuzz.post("/v1/pos-receipts", content)

    run()
    fuzz.assert_store_unchanged()


def test_broken_payment_signs(fuzz: Fuzzed) -> None:
    @settings(FUZZ_SETTINGS, max_examples=400)
    @given(content=broken_signs())
    def run(content: bytes) -> None:
        fuzz.post("/v1/payments/sign", content)

    run()
    fuzz.assert_store_unchanged()


def test_bodies_that_are_not_json_objects(fuzz: Fuzzed) -> None:
    @settings(FUZZ_SETTINGS, max_examples=300)
    @given(path=st.sampled_from(ENDPOINTS), content=raw_bodies())
    def run(path: str, content: bytes) -> None:
        fuzz.post(path, content)

    run()
    fuzz.assert_store_unchanged()


@pytest.mark.parametrize("path", ENDPOINTS)
def test_ten_megabyte_body_is_413(fuzz: Fuzzed, path: str) -> None:
    body = valid_receipt()
    body["lines"][0]["description"] = "Α" * (5 * 1024 * 1024)  # 10 MB of UTF-8
    content = encode(body)
    assert len(content) > 10 * 1024 * 1024
    response = fuzz.client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"]
    fuzz.sent += 1


def test_wrong_content_types_and_empty_bodies(fuzz: Fuzzed) -> None:
    for path in ENDPOINTS:
        fuzz.post(path, b"")
        fuzz.post(path, b"request_id=1&lines=2", "application/x-www-form-urlencoded")
        fuzz.post(path, encode(valid_receipt()).replace(b"{", b"[", 1), "text/plain")


def test_store_unchanged_after_all_fuzzing(fuzz: Fuzzed) -> None:
    assert fuzz.sent >= 2000
    fuzz.assert_store_unchanged()
    with fuzz.stack.client() as client:
        assert client.get("/v1/health").status_code == 200
