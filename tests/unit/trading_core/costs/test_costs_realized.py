"""Realized cost of a fill: known answers, agreement with the simulated fill, validation."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_core.costs import CostBreakdown, RealizedCost, cost_error_bps, realized_cost_bps
from trading_core.costs.kernel import fill_price_and_fee


def test_buy_above_reference_costs_impact_plus_fee() -> None:
    # bought 2 at 100.05 against a 100 close, 0.08 USD fee on 200.1 notional
    cost = realized_cost_bps(
        side_sign=1.0, reference_price=100.0, avg_fill_price=100.05, filled_qty=2.0, fee_usd=0.08
    )
    assert cost.price_impact_bps == pytest.approx(5.0)
    assert cost.fee_bps == pytest.approx(0.08 / 200.1 * 1e4)
    assert cost.total_bps == pytest.approx(cost.price_impact_bps + cost.fee_bps)


def test_sell_below_reference_is_a_cost() -> None:
    cost = realized_cost_bps(
        side_sign=-1.0, reference_price=200.0, avg_fill_price=199.9, filled_qty=1.0, fee_usd=0.0
    )
    assert cost == RealizedCost(
        total_bps=cost.price_impact_bps, fee_bps=0.0, price_impact_bps=cost.price_impact_bps
    )
    assert cost.price_impact_bps == pytest.approx(5.0)


def test_price_improvement_and_rebate_are_negative_costs() -> None:
    cost = realized_cost_bps(
        side_sign=1.0, reference_price=100.0, avg_fill_price=99.99, filled_qty=1.0, fee_usd=-0.01
    )
    assert cost.price_impact_bps == pytest.approx(-1.0)
    assert cost.fee_bps == pytest.approx(-0.01 / 99.99 * 1e4)
    assert cost.total_bps < 0.0


def test_cost_error_is_realized_minus_expected() -> None:
    realized = RealizedCost(total_bps=7.5, fee_bps=4.0, price_impact_bps=3.5)
    assert cost_error_bps(6.0, realized) == pytest.approx(1.5)
    assert cost_error_bps(9.0, realized) == pytest.approx(-1.5)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("side_sign", 0.0, "side_sign=0.0"),
        ("side_sign", 2.0, "side_sign=2.0"),
        ("side_sign", math.nan, "side_sign=nan"),
        ("side_sign", True, "side_sign=True"),
        ("reference_price", 0.0, "reference_price=0.0"),
        ("reference_price", -1.0, "reference_price=-1.0"),
        ("avg_fill_price", math.inf, "avg_fill_price=inf"),
        ("filled_qty", 0.0, "filled_qty=0.0"),
        ("filled_qty", math.nan, "filled_qty=nan"),
        ("fee_usd", math.nan, "fee_usd=nan"),
        ("fee_usd", "0.1", "fee_usd='0.1'"),
    ],
)
def test_realized_cost_bad_input_raises_quoting_value(
    field: str, value: object, match: str
) -> None:
    kwargs: dict[str, object] = {
        "side_sign": 1.0,
        "reference_price": 100.0,
        "avg_fill_price": 100.0,
        "filled_qty": 1.0,
        "fee_usd": 0.0,
    }
    kwargs[field] = value
    with pytest.raises(ValueError, match=match):
        realized_cost_bps(**kwargs)  # type: ignore[arg-type]


def test_cost_error_nonfinite_expected_raises() -> None:
    with pytest.raises(ValueError, match="expected_bps=inf"):
        cost_error_bps(math.inf, RealizedCost(1.0, 0.5, 0.5))


@settings(deadline=None)  # the first call loads the numba kernel
@given(
    signed_qty=st.floats(1e-6, 1e6).flatmap(lambda q: st.sampled_from([q, -q])),
    price=st.floats(1e-4, 1e6),
    adjust_bps=st.floats(0.0, 500.0),
    fee_bps=st.floats(0.0, 50.0),
)
def test_simulated_fill_realizes_exactly_adjust_plus_fee(
    signed_qty: float, price: float, adjust_bps: float, fee_bps: float
) -> None:
    fill_price, fee_usd = fill_price_and_fee(signed_qty, price, adjust_bps, fee_bps)
    cost = realized_cost_bps(
        side_sign=math.copysign(1.0, signed_qty),
        reference_price=price,
        avg_fill_price=fill_price,
        filled_qty=abs(signed_qty),
        fee_usd=fee_usd,
    )
    assert cost.price_impact_bps == pytest.approx(adjust_bps, abs=1e-9)
    assert cost.fee_bps == pytest.approx(fee_bps, abs=1e-9)
    assert cost.total_bps == pytest.approx(adjust_bps + fee_bps, abs=1e-9)


@settings(deadline=None)
@given(
    fee=st.floats(0.0, 20.0),
    spread=st.floats(0.0, 40.0),
    slippage=st.floats(0.0, 100.0),
    price=st.floats(1e-2, 1e5),
    signed_qty=st.sampled_from([0.5, -0.5, 3.0, -3.0]),
)
def test_fill_at_model_one_way_cost_has_zero_cost_error(
    fee: float, spread: float, slippage: float, price: float, signed_qty: float
) -> None:
    breakdown = CostBreakdown(fee, spread, slippage, 0.0, 0.0, fee + spread + slippage)
    expected = breakdown.one_way_fee_bps + breakdown.one_way_price_bps
    fill_price, fee_usd = fill_price_and_fee(
        signed_qty, price, breakdown.one_way_price_bps, breakdown.one_way_fee_bps
    )
    realized = realized_cost_bps(
        side_sign=math.copysign(1.0, signed_qty),
        reference_price=price,
        avg_fill_price=fill_price,
        filled_qty=abs(signed_qty),
        fee_usd=fee_usd,
    )
    assert cost_error_bps(expected, realized) == pytest.approx(0.0, abs=1e-9)


@given(
    side=st.sampled_from([1.0, -1.0]),
    reference=st.floats(1e-3, 1e6),
    move_bps=st.floats(-1000.0, 1000.0),
    qty=st.floats(1e-6, 1e6),
    fee_usd=st.floats(-10.0, 1e4),
)
def test_total_is_fee_plus_impact_and_impact_flips_with_side(
    side: float, reference: float, move_bps: float, qty: float, fee_usd: float
) -> None:
    fill = reference * (1.0 + move_bps * 1e-4)
    cost = realized_cost_bps(
        side_sign=side,
        reference_price=reference,
        avg_fill_price=fill,
        filled_qty=qty,
        fee_usd=fee_usd,
    )
    mirror = realized_cost_bps(
        side_sign=-side,
        reference_price=reference,
        avg_fill_price=fill,
        filled_qty=qty,
        fee_usd=fee_usd,
    )
    assert cost.total_bps == cost.fee_bps + cost.price_impact_bps
    assert mirror.price_impact_bps == -cost.price_impact_bps
    assert mirror.fee_bps == cost.fee_bps
    assert math.copysign(1.0, cost.fee_bps) == math.copysign(1.0, fee_usd) or fee_usd == 0.0
