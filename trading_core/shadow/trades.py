"""Per-trade net returns of a paper book, fill by fill, and per-bar returns from closed trades.

``account_fill``: a trade is the life of a position from the fill that opens it to the fill
that closes it (a partial close closes that part; a flip closes the whole position and opens
the remainder the other way). Its net return is the price move of the closed quantity minus the
fees of its entry and exit fills, as a fraction of the closed quantity's entry notional: the
per-trade return the win-rate criterion of the shadow test counts (a win is > 0). Entry fees
are carried with the open position and charged pro rata as it is closed.

``realized_bar_returns``: the per-bar series of a production model's realized PnL (closed
trades), as a fraction of the book's capital, for the auto-rollback check.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from trading_core.brain.records import require_utc

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class FillAccounting:
    """After one fill: the closed part's net return (None when nothing closed) and the entry
    fees still attached to the open position."""

    trade_return: float | None
    open_fee_usd: float


def account_fill(
    position_qty: float,
    entry_price: float,
    open_fee_usd: float,
    *,
    fill_qty: float,
    fill_price: float,
    fill_fee_usd: float,
) -> FillAccounting:
    """Account one fill against the position held before it (``position_qty`` 0: flat).

    ``entry_price`` is the position's average entry price, ``open_fee_usd`` the entry fees not
    yet charged to a closed trade; quantities are signed base units (> 0 long / bought).
    """
    _check_fill(position_qty, entry_price, open_fee_usd, fill_qty, fill_price, fill_fee_usd)
    if position_qty == 0.0 or position_qty * fill_qty > 0.0:
        return FillAccounting(None, open_fee_usd + fill_fee_usd)
    closed_qty = min(abs(position_qty), abs(fill_qty))
    closed_share = closed_qty / abs(position_qty)
    exit_fee = fill_fee_usd * closed_qty / abs(fill_qty)
    entry_fee = open_fee_usd * closed_share
    gross = closed_qty * (fill_price - entry_price) * math.copysign(1.0, position_qty)
    trade_return = (gross - entry_fee - exit_fee) / (closed_qty * entry_price)
    if abs(fill_qty) > abs(position_qty):  # a flip: the remainder opens the other way
        return FillAccounting(trade_return, fill_fee_usd - exit_fee)
    return FillAccounting(trade_return, open_fee_usd - entry_fee)


def _check_fill(
    position_qty: float,
    entry_price: float,
    open_fee_usd: float,
    fill_qty: float,
    fill_price: float,
    fill_fee_usd: float,
) -> None:
    values = {
        "position_qty": position_qty,
        "entry_price": entry_price,
        "open_fee_usd": open_fee_usd,
        "fill_qty": fill_qty,
        "fill_price": fill_price,
        "fill_fee_usd": fill_fee_usd,
    }
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        raise ValueError(f"fill accounting needs finite numbers; got {bad}")
    if fill_qty == 0.0 or fill_price <= 0.0 or fill_fee_usd < 0.0 or open_fee_usd < 0.0:
        raise ValueError(
            f"fill_qty={fill_qty!r} must be non-zero, fill_price={fill_price!r} > 0, "
            f"fill_fee_usd={fill_fee_usd!r} and open_fee_usd={open_fee_usd!r} >= 0"
        )
    if position_qty != 0.0 and entry_price <= 0.0:
        raise ValueError(f"entry_price={entry_price!r} of an open position must be > 0")


def realized_bar_returns(
    closes: Sequence[tuple[datetime, float]],
    *,
    start: datetime,
    end: datetime,
    bar_ms: int,
    capital_usd: float,
) -> FloatArray:
    """Per-bar realized returns over ``[start, end)``: the PnL (USD, net of fees) of the trades
    closed in each bar divided by ``capital_usd``; bars without a close return 0.

    ``closes`` are (closed_at, pnl_usd) pairs, every ``closed_at`` inside ``[start, end)``.
    Realized PnL ignores open positions' marks: a drawdown on an open position shows when
    the position is closed, not before.
    """
    require_utc(start, "start")
    require_utc(end, "end")
    if end <= start:
        raise ValueError(f"end {end} must be after start {start}")
    if bar_ms < 1:
        raise ValueError(f"bar_ms={bar_ms!r} must be >= 1")
    if not (math.isfinite(capital_usd) and capital_usd > 0.0):
        raise ValueError(f"capital_usd={capital_usd!r} must be a finite amount > 0")
    span_ms = (end - start).total_seconds() * 1000.0
    returns = np.zeros(math.ceil(span_ms / bar_ms), dtype=np.float64)
    for closed_at, pnl_usd in closes:
        if not start <= require_utc(closed_at, "closed_at") < end:
            raise ValueError(f"trade closed at {closed_at} lies outside [{start}, {end})")
        if not math.isfinite(pnl_usd):
            raise ValueError(f"pnl_usd={pnl_usd!r} (trade closed at {closed_at}) must be finite")
        bar = int((closed_at - start).total_seconds() * 1000.0 // bar_ms)
        returns[bar] += pnl_usd / capital_usd
    return returns
