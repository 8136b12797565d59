from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from agent.fiscal.amounts import document_totals, line_amounts, vat_analysis
from agent.fiscal.tax_codes import VAT_RATES

quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("999"), places=3)
prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("9999.99"), places=2)
categories = st.sampled_from(sorted(VAT_RATES))
lines_strategy = st.lists(st.tuples(quantities, prices, categories), min_size=1, max_size=30)


def test_gross_mode_example():
    line = line_amounts(Decimal("3"), Decimal("1.99"), 1, prices_include_vat=True)
    assert (line.gross, line.net, line.vat) == (Decimal("5.97"), Decimal("4.81"), Decimal("1.16"))


def test_half_up_rounding():
    # 0.125 net → 0.13 (half-up), never banker's 0.12
    line = line_amounts(Decimal("1"), Decimal("0.125"), 1, prices_include_vat=False)
    assert line.net == Decimal("0.13")
    # 0.50 net at 13% → 0.065 → 0.07 (banker's rounding would give 0.06)
    line = line_amounts(Decimal("1"), Decimal("0.50"), 2, prices_include_vat=False)
    assert line.vat == Decimal("0.07")


def test_zero_rate_has_no_vat():
    line = line_amounts(Decimal("2"), Decimal("5.00"), 7, prices_include_vat=True)
    assert (line.net, line.vat, line.gross) == (Decimal("10.00"), Decimal("0.00"), Decimal("10.00"))


@given(lines_strategy, st.booleans())
def test_summaries_equal_sum_of_lines(raw_lines, gross_mode):
    lines = [line_amounts(q, p, c, prices_include_vat=gross_mode) for q, p, c in raw_lines]
    totals = document_totals(lines)
    buckets = vat_analysis(lines)
    assert totals.net == sum(line.net for line in lines)
    assert totals.vat == sum(line.vat for line in lines)
    assert totals.net + totals.vat == totals.gross
    assert sum(b.net for b in buckets) == totals.net
    assert sum(b.vat for b in buckets) == totals.vat
    for line in lines:
        assert line.net + line.vat == line.gross
        assert line.gross.as_tuple().exponent == -2
    if gross_mode:
        assert totals.gross == sum(
            (q * p).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP") for q, p, _ in raw_lines
        )
