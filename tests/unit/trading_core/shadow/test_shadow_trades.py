"""Per-trade net returns of a paper book (account_fill) and realized per-bar returns."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading_core.shadow.trades import FillAccounting, account_fill, realized_bar_returns

T0 = datetime(2026, 10, 25, tzinfo=UTC)
HOUR_MS = 3_600_000


@pytest.mark.parametrize(
    ("position", "entry", "open_fee", "fill", "price", "fee", "expected"),
    [
        # open from flat: no trade, the fee waits for the close
        (0.0, 0.0, 0.0, 1.0, 100.0, 0.1, FillAccounting(None, 0.1)),
        # add to a long: no trade, fees add up
        (1.0, 100.0, 0.1, 1.0, 102.0, 0.102, FillAccounting(None, 0.202)),
        # close a long at +10%: (10 - 0.1 - 0.11) / 100
        (1.0, 100.0, 0.1, -1.0, 110.0, 0.11, FillAccounting(0.0979, 0.0)),
        # close a short at a loss: (-(105 - 100) * 2 - 0.2 - 0.21) / 200
        (-2.0, 100.0, 0.2, 2.0, 105.0, 0.21, FillAccounting(-0.05205, 0.0)),
        # close half of a long at -10%: (-10 - 0.1 - 0.09) / 100, half the entry fee stays
        (2.0, 100.0, 0.2, -1.0, 90.0, 0.09, FillAccounting(-0.1019, 0.1)),
        # flip a long into a short: 1 closes at +10%, 2 open with 2/3 of the fill's fee
        (1.0, 100.0, 0.1, -3.0, 110.0, 0.33, FillAccounting(0.0979, 0.22)),
    ],
)
def test_account_fill_known_answers(
    position: float,
    entry: float,
    open_fee: float,
    fill: float,
    price: float,
    fee: float,
    expected: FillAccounting,
) -> None:
    got = account_fill(position, entry, open_fee, fill_qty=fill, fill_price=price, fill_fee_usd=fee)
    if expected.trade_return is None:
        assert got.trade_return is None
    else:
        assert got.trade_return == pytest.approx(expected.trade_return, rel=1e-12)
    assert got.open_fee_usd == pytest.approx(expected.open_fee_usd, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fill_qty": 0.0, "fill_price": 100.0, "fill_fee_usd": 0.0}, "non-zero"),
        ({"fill_qty": 1.0, "fill_price": -1.0, "fill_fee_usd": 0.0}, "> 0"),
        ({"fill_qty": 1.0, "fill_price": 100.0, "fill_fee_usd": math.nan}, "finite"),
    ],
)
def test_account_fill_bad_fill_raises_quoting_value(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        account_fill(0.0, 0.0, 0.0, **kwargs)


def test_account_fill_open_position_without_entry_price_raises() -> None:
    with pytest.raises(ValueError, match="entry_price"):
        account_fill(1.0, 0.0, 0.0, fill_qty=-1.0, fill_price=100.0, fill_fee_usd=0.0)


@given(
    qty=st.floats(0.01, 100.0),
    side=st.sampled_from([1.0, -1.0]),
    entry=st.floats(1.0, 1e5),
    move=st.floats(-0.5, 0.5),
    fee_bps=st.floats(0.0, 50.0),
)
def test_round_trip_return_times_notional_is_the_cash_pnl(
    qty: float, side: float, entry: float, move: float, fee_bps: float
) -> None:
    """Open then close the same quantity: return x entry notional == cash in - cash out."""
    exit_price = entry * (1.0 + move)
    entry_fee, exit_fee = qty * entry * fee_bps / 1e4, qty * exit_price * fee_bps / 1e4
    opened = account_fill(
        0.0, 0.0, 0.0, fill_qty=side * qty, fill_price=entry, fill_fee_usd=entry_fee
    )
    closed = account_fill(
        side * qty,
        entry,
        opened.open_fee_usd,
        fill_qty=-side * qty,
        fill_price=exit_price,
        fill_fee_usd=exit_fee,
    )
    cash_pnl = side * qty * (exit_price - entry) - entry_fee - exit_fee
    assert closed.trade_return is not None
    assert closed.trade_return * qty * entry == pytest.approx(cash_pnl, rel=1e-9, abs=1e-9)
    assert closed.open_fee_usd == pytest.approx(0.0, abs=1e-9)


def test_realized_bar_returns_bucket_closes_by_bar() -> None:
    closes = [
        (T0 + timedelta(minutes=30), 100.0),
        (T0 + timedelta(minutes=59), -50.0),
        (T0 + timedelta(hours=2, minutes=1), 200.0),
    ]
    returns = realized_bar_returns(
        closes, start=T0, end=T0 + timedelta(hours=4), bar_ms=HOUR_MS, capital_usd=10_000.0
    )
    np.testing.assert_allclose(returns, [0.005, 0.0, 0.02, 0.0])


def test_realized_bar_returns_partial_last_bar_counts_as_a_bar() -> None:
    returns = realized_bar_returns(
        [], start=T0, end=T0 + timedelta(minutes=90), bar_ms=HOUR_MS, capital_usd=1.0
    )
    assert returns.shape == (2,)


@pytest.mark.parametrize(
    ("closes", "kwargs", "message"),
    [
        ([(T0 - timedelta(seconds=1), 1.0)], {}, "outside"),
        ([(T0, math.inf)], {}, "finite"),
        ([], {"capital_usd": 0.0}, "capital_usd"),
        ([], {"end": T0}, "after start"),
        ([], {"bar_ms": 0}, "bar_ms"),
    ],
)
def test_realized_bar_returns_bad_input_raises(
    closes: list[tuple[datetime, float]], kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "start": T0,
        "end": T0 + timedelta(hours=2),
        "bar_ms": HOUR_MS,
        "capital_usd": 1000.0,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        realized_bar_returns(closes, **arguments)  # type: ignore[arg-type]
