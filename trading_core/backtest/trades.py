"""Round trips from the fill records: a trade opens when the position leaves zero and closes
when it returns to zero or flips (a flip closes one trade and opens the next at the same fill;
the fill's fee is split pro rata). A trade's PnL is its cash flows: fills, fees and the perp
funding charged while it was open."""

import math
from dataclasses import dataclass
from typing import Final

import numba
import numpy as np
import numpy.typing as npt

from trading_core.backtest.kernel import position_after_fill

T_ENTRY_BAR: Final = 0
T_EXIT_BAR: Final = 1
T_SIDE: Final = 2
T_ENTRY_PRICE: Final = 3
T_EXIT_PRICE: Final = 4
T_PNL_USD: Final = 5
T_ENTRY_NOTIONAL_USD: Final = 6
T_EXPECTED_NET_EDGE_BPS: Final = 7
N_TRADE_COLUMNS: Final = 8


@numba.njit(cache=True, error_model="numpy")
def extract_trades(
    fill_qty: npt.NDArray[np.float64],
    fill_price: npt.NDArray[np.float64],
    fee_usd: npt.NDArray[np.float64],
    funding_usd: npt.NDArray[np.float64],
    net_edge_bps: npt.NDArray[np.float64],
    fill_next_open: bool,
    out: npt.NDArray[np.float64],
) -> int:
    """Write closed trades into ``out`` (rows, ``T_*`` columns); returns how many."""
    position, cash_flow, n_trades = 0.0, 0.0, 0
    entry_bar, side, entry_price, notional, expected = 0, 0.0, 0.0, 0.0, 0.0
    lag = 1 if fill_next_open else 0
    for t in range(fill_qty.shape[0]):
        if not fill_next_open and position != 0.0:
            cash_flow -= funding_usd[t]
        qty = fill_qty[t]
        if qty != 0.0:
            price, fee = fill_price[t], fee_usd[t]
            new = position_after_fill(position, qty)
            opening = qty
            if position != 0.0 and (new == 0.0 or new * position < 0.0):
                closing_share = abs(position) / abs(qty)
                cash_flow += position * price - fee * closing_share
                out[n_trades, T_ENTRY_BAR] = entry_bar
                out[n_trades, T_EXIT_BAR] = t
                out[n_trades, T_SIDE] = side
                out[n_trades, T_ENTRY_PRICE] = entry_price
                out[n_trades, T_EXIT_PRICE] = price
                out[n_trades, T_PNL_USD] = cash_flow
                out[n_trades, T_ENTRY_NOTIONAL_USD] = notional
                out[n_trades, T_EXPECTED_NET_EDGE_BPS] = expected
                n_trades += 1
                opening, fee = new, fee * (1.0 - closing_share)
                position = 0.0
            if position == 0.0 and new != 0.0:
                entry_bar, side, entry_price = t, 1.0 if new > 0.0 else -1.0, price
                notional = abs(opening) * price
                expected = net_edge_bps[t - lag] if t - lag >= 0 else math.nan
                cash_flow = -opening * price - fee
            elif position != 0.0:
                cash_flow += -qty * price - fee
            position = new
        if fill_next_open and position != 0.0:
            cash_flow -= funding_usd[t]
    return n_trades


@dataclass(frozen=True)
class TradeRecords:
    """Closed round trips of one backtest (read-only arrays, one entry per trade)."""

    entry_bar: npt.NDArray[np.int64]
    exit_bar: npt.NDArray[np.int64]
    side: npt.NDArray[np.int8]
    entry_price: npt.NDArray[np.float64]
    exit_price: npt.NDArray[np.float64]
    pnl_usd: npt.NDArray[np.float64]
    entry_notional_usd: npt.NDArray[np.float64]
    expected_net_edge_bps: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).flags.writeable = False

    @property
    def n_trades(self) -> int:
        return int(self.pnl_usd.shape[0])

    @property
    def return_bps(self) -> npt.NDArray[np.float64]:
        """Net return of each trade after all costs, in bps of its entry notional."""
        result: npt.NDArray[np.float64] = self.pnl_usd / self.entry_notional_usd * 1e4
        return result

    @classmethod
    def from_matrix(cls, rows: npt.NDArray[np.float64]) -> "TradeRecords":
        return cls(
            entry_bar=rows[:, T_ENTRY_BAR].astype(np.int64),
            exit_bar=rows[:, T_EXIT_BAR].astype(np.int64),
            side=rows[:, T_SIDE].astype(np.int8),
            entry_price=rows[:, T_ENTRY_PRICE].copy(),
            exit_price=rows[:, T_EXIT_PRICE].copy(),
            pnl_usd=rows[:, T_PNL_USD].copy(),
            entry_notional_usd=rows[:, T_ENTRY_NOTIONAL_USD].copy(),
            expected_net_edge_bps=rows[:, T_EXPECTED_NET_EDGE_BPS].copy(),
        )
