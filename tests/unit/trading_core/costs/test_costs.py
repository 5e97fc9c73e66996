"""Cost model: known answers to +-0.5 bps, spread sources, validation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_core.config.models import CostModelSection, VenueFees
from trading_core.costs import (
    BookStatus,
    BookTop,
    CostBreakdown,
    CostInputs,
    CostParams,
    SpreadOrigin,
    edge_after_cost_bps,
    estimate_costs,
    kernel,
    passes_cost_check,
    resolve_spread_bps,
    resolve_spread_bps_array,
)

TOLERANCE_BPS = 0.5


def _params(**overrides: object) -> CostParams:
    return CostParams.from_config(CostModelSection.model_validate(overrides))


# (name, config overrides, inputs, expected round-trip components: fee, spread, slip, fund, total)
KNOWN_ANSWERS = [
    (
        "binance_taker_perp_4h",
        {},
        CostInputs(
            order_qty=1.0, bar_volume=100.0, volatility_bps=50.0, spread_bps=2.0, holding_hours=4.0
        ),
        (8.0, 2.0, 15.81, 0.5, 26.81),
    ),
    (
        "binance_maker_spot_no_order",
        {"liquidity_side": "maker", "instrument": "spot"},
        CostInputs(
            order_qty=0.0, bar_volume=100.0, volatility_bps=50.0, spread_bps=3.0, holding_hours=4.0
        ),
        (4.0, 3.0, 0.0, 0.0, 7.5),
    ),
    (
        "coinbase_taker_spot_big_order",
        {"venue": "coinbase", "instrument": "spot"},
        CostInputs(
            order_qty=40.0,
            bar_volume=100.0,
            volatility_bps=20.0,
            spread_bps=10.0,
            holding_hours=4.0,
        ),
        (10.0, 10.0, 40.0, 0.0, 60.5),
    ),
    (
        "binance_taker_perp_one_bar_of_volume_24h",
        {},
        CostInputs(
            order_qty=10.0,
            bar_volume=100.0,
            volatility_bps=100.0,
            spread_bps=2.0,
            holding_hours=24.0,
        ),
        (8.0, 2.0, 100.0, 3.0, 113.5),
    ),
    (
        "custom_venue_zero_safety",
        {
            "venue": "kraken",
            "fee_schedule": {"kraken": VenueFees(maker_bps=1.6, taker_bps=2.6)},
            "safety_margin_bps": 0.0,
            "instrument": "spot",
            "slippage_model": {"participation_rate": 0.25, "impact_factor": 1.0},
        },
        CostInputs(
            order_qty=1.0, bar_volume=4.0, volatility_bps=30.0, spread_bps=4.0, holding_hours=1.0
        ),
        (5.2, 4.0, 60.0, 0.0, 69.2),
    ),
]


@pytest.mark.parametrize(
    ("overrides", "inputs", "expected"),
    [case[1:] for case in KNOWN_ANSWERS],
    ids=[case[0] for case in KNOWN_ANSWERS],
)
def test_known_answers_round_trip_within_half_bps(
    overrides: dict[str, object], inputs: CostInputs, expected: tuple[float, ...]
) -> None:
    costs = estimate_costs(_params(**overrides), inputs)
    got = (costs.fee_bps, costs.spread_bps, costs.slippage_bps, costs.funding_bps, costs.total_bps)
    for value, want in zip(got, expected, strict=True):
        assert value == pytest.approx(want, abs=TOLERANCE_BPS)


def test_one_way_legs_are_half_the_round_trip() -> None:
    inputs = CostInputs(1.0, 100.0, 50.0, 2.0, 4.0)
    costs = estimate_costs(_params(), inputs)
    assert costs.one_way_fee_bps == pytest.approx(4.0)
    assert costs.one_way_price_bps == pytest.approx(1.0 + 0.5 * 50.0 * math.sqrt(0.1))


def test_zero_volume_bar_makes_slippage_infinite() -> None:
    costs = estimate_costs(_params(), CostInputs(1.0, 0.0, 50.0, 2.0, 4.0))
    assert math.isinf(costs.slippage_bps)
    assert not passes_cost_check(1e6, costs, _params())


def test_spot_pays_no_funding_even_when_venue_has_a_rate() -> None:
    params = _params(instrument="spot")
    assert params.funding_bps_per_8h == 0.0
    assert estimate_costs(params, CostInputs(0.0, 1.0, 1.0, 0.0, 80.0)).funding_bps == 0.0


def test_edge_after_cost_subtracts_total() -> None:
    costs = CostBreakdown(8.0, 2.0, 1.0, 0.5, 0.5, 12.0)
    assert edge_after_cost_bps(20.0, costs) == pytest.approx(8.0)
    assert passes_cost_check(15.0, costs, _params())
    assert not passes_cost_check(14.9, costs, _params())


def test_breakdown_with_inconsistent_total_is_rejected() -> None:
    with pytest.raises(ValueError, match="total_bps"):
        CostBreakdown(8.0, 2.0, 1.0, 0.5, 0.5, 99.0)


def test_nan_expected_edge_is_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        edge_after_cost_bps(math.nan, CostBreakdown.zero())


@pytest.mark.parametrize(
    ("source", "book", "candle", "status", "expected_bps", "origin", "reason"),
    [
        ("websocket", BookTop(99.99, 100.01), 7.0, BookStatus.FRESH, 2.0, SpreadOrigin.BOOK, ""),
        ("api", None, 7.0, BookStatus.NO_FEED, 2.0, SpreadOrigin.STATIC, "no_book_feed"),
        ("websocket", None, None, BookStatus.NO_FEED, 2.0, SpreadOrigin.STATIC, "no_book_feed"),
        ("websocket", None, 7.0, BookStatus.STALE, 7.0, SpreadOrigin.CANDLES, "book_stale"),
        ("websocket", None, 7.0, BookStatus.MISSING, 7.0, SpreadOrigin.CANDLES, "book_missing"),
        ("websocket", None, math.nan, BookStatus.STALE, 2.0, SpreadOrigin.STATIC, "book_stale"),
        ("candles", BookTop(99.0, 101.0), 7.0, BookStatus.FRESH, 7.0, SpreadOrigin.CANDLES, ""),
        ("candles", None, math.nan, BookStatus.NO_FEED, 2.0, SpreadOrigin.STATIC,
         "candle_estimate_unknown"),
        ("static", BookTop(99.0, 101.0), 7.0, BookStatus.FRESH, 2.0, SpreadOrigin.STATIC, ""),
    ],
)  # fmt: skip
def test_spread_source_fallback_order_names_the_reason(
    source: str,
    book: BookTop | None,
    candle: float | None,
    status: BookStatus,
    expected_bps: float,
    origin: str,
    reason: str,
) -> None:
    choice = resolve_spread_bps(
        _params(spread_source=source), book=book, candle_spread_bps=candle, book_status=status
    )
    assert choice.spread_bps == pytest.approx(expected_bps, rel=1e-3)
    assert choice.origin == origin
    assert choice.fallback_reason == reason


def test_spread_array_uses_candles_where_finite_else_static() -> None:
    spread = resolve_spread_bps_array(_params(spread_source="candles"), [5.0, math.nan, 1.0], 3)
    assert spread.tolist() == [5.0, 2.0, 1.0]
    assert resolve_spread_bps_array(_params(spread_source="static"), [5.0], 1).tolist() == [2.0]
    # no live book in history: websocket falls back to the static spread, not to candles
    assert resolve_spread_bps_array(_params(), [5.0], 1).tolist() == [2.0]


def test_book_with_crossed_quotes_is_rejected() -> None:
    with pytest.raises(ValueError, match="best_ask"):
        BookTop(best_bid=101.0, best_ask=100.0)


def test_negative_inputs_are_rejected_naming_the_field() -> None:
    with pytest.raises(ValueError, match="order_qty"):
        CostInputs(-1.0, 1.0, 1.0, 1.0, 1.0)


def test_params_array_layout_round_trips_the_fields() -> None:
    params = _params()
    values = params.as_array()
    assert values.tolist() == [4.0, 1.0, 0.5, 0.1, 0.5, 3.0]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    sizes=st.lists(st.floats(0.01, 100.0), min_size=1, max_size=8),
    steps=st.lists(st.floats(0.0, 5.0), min_size=8, max_size=8),
    qty_a=st.floats(0.0, 900.0),
    qty_b=st.floats(0.0, 900.0),
)
def test_book_walk_grows_with_size_and_is_unknown_beyond_the_depth(
    sizes: list[float], steps: list[float], qty_a: float, qty_b: float
) -> None:
    prices = 100.0 + np.cumsum([0.0, *steps[: len(sizes) - 1]])
    px, sz = np.asarray(prices, dtype=np.float64), np.asarray(sizes, dtype=np.float64)
    small, large = sorted((qty_a, qty_b))
    walk_small, walk_large = (kernel.book_walk_bps(q, px, sz, 100.0) for q in (small, large))
    depth = float(sz.sum())
    if large > depth * (1 + 1e-9):
        assert math.isnan(walk_large)
    elif small > 0.0:
        assert 0.0 <= walk_small <= walk_large + 1e-9
    if 0.0 < small <= sizes[0]:
        assert walk_small == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(kernel.book_walk_bps(1.0, px[:0], sz[:0], 100.0))  # no levels: unknown
