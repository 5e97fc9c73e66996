"""What the decision-inputs function reads and returns, as plain per-row arrays.

A *row* is one bar of one coin: a coin's history (a :class:`CoinFrame`'s rows, the walk-forward
backtest) or the newest bar of many coins (Hamilton's batch, built by
``hamilton_exec.tick.newest_bars.NewestBars.decision_columns``). The market inputs come from the
feature columns named below (``compute_features``): ATR = ``atr_14_pct x close``, one bar's
volatility = ``realized_vol_24`` (log-return standard deviation), the candle spread estimate =
``spread_cs_bps``. A row whose features are still warming up is flagged invalid (the decision
step holds on it).
"""

from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

from trading_core.backtest.engine import BacktestInputs
from trading_core.training.dataset import CoinFrame

ATR_PCT_COLUMN: Final = "atr_14_pct"
VOLATILITY_COLUMN: Final = "realized_vol_24"
SPREAD_COLUMN: Final = "spread_cs_bps"
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class EngineVotes:
    """The engines' per-bar output and the regime gates, as plain arrays (n_bars, n_engines)
    and (n_regimes, n_engines)."""

    signals: FloatArray
    confidences: FloatArray
    regimes: npt.NDArray[np.int8]
    enabled: BoolArray
    weight_multipliers: FloatArray


@dataclass(frozen=True)
class DecisionColumns:
    """The market columns of the rows to decide (all of one length; NaN: unknown).

    ``atr_pct``, ``realized_vol`` and ``candle_spread_bps`` are the raw feature values; ``warm``
    says the row is past every warm-up; ``regimes`` are regime codes.
    """

    timestamps_ms: IntArray
    open: FloatArray
    close: FloatArray
    volume: FloatArray
    atr_pct: FloatArray
    realized_vol: FloatArray
    candle_spread_bps: FloatArray
    warm: BoolArray
    regimes: npt.NDArray[np.int8]

    def __post_init__(self) -> None:
        n = self.timestamps_ms.shape[0]
        for f in fields(self):
            shape = getattr(self, f.name).shape
            if shape != (n,):
                raise ValueError(f"decision column {f.name} has shape {shape}, expected ({n},)")

    @property
    def n_rows(self) -> int:
        return int(self.timestamps_ms.shape[0])

    @classmethod
    def from_frame(cls, frame: CoinFrame, rows: IntArray) -> "DecisionColumns":
        """Rows ``rows`` of a prepared coin (``prepare_coin_frame``)."""
        return cls(
            timestamps_ms=frame.timestamps_ms[rows],
            open=frame_column(frame, "open")[rows],
            close=frame_column(frame, "close")[rows],
            volume=frame_column(frame, "volume")[rows],
            atr_pct=frame_column(frame, ATR_PCT_COLUMN)[rows],
            realized_vol=frame_column(frame, VOLATILITY_COLUMN)[rows],
            candle_spread_bps=frame_column(frame, SPREAD_COLUMN)[rows],
            warm=frame.warm[rows],
            regimes=frame.regimes[rows],
        )


@dataclass(frozen=True)
class DecisionRows:
    """Per-row decision inputs (see ``trading_core.decision.inputs.decision_rows``).

    ``spread_bps`` is the full spread: resolved for a history (no live book), or the raw candle
    estimate (NaN: unknown) that ``decide_bar`` resolves with the live book (Hamilton).
    ``atr``, ``volatility_bps`` and ``expected_return_bps`` are finite (NaN -> 0).
    """

    timestamps_ms: IntArray
    open: FloatArray
    close: FloatArray
    volume: FloatArray
    atr: FloatArray
    volatility_bps: FloatArray
    spread_bps: FloatArray
    regime: npt.NDArray[np.int8]
    action: npt.NDArray[np.int8]
    confidence: FloatArray
    score: FloatArray
    expected_return_bps: FloatArray
    data_valid: BoolArray

    def backtest_inputs(self, symbol: str) -> BacktestInputs:
        """The rows as one coin's :class:`BacktestInputs` (rows in time order)."""
        return BacktestInputs(
            symbol=symbol,
            timestamps_ms=self.timestamps_ms,
            open=self.open,
            close=self.close,
            volume=self.volume,
            atr=self.atr,
            volatility_bps=self.volatility_bps,
            half_spread_bps=np.nan_to_num(self.spread_bps) / 2.0,
            regime=self.regime,
            action=self.action,
            confidence=self.confidence,
            score=self.score,
            expected_return_bps=self.expected_return_bps,
            data_valid=self.data_valid,
        )


def frame_column(frame: CoinFrame, name: str) -> FloatArray:
    """One bar or feature column of a prepared coin, float64 with NaN for nulls."""
    if name not in frame.bars.columns:
        raise ValueError(f"prepared bars lack the column {name!r}; run prepare_coin_frame first")
    values: FloatArray = frame.bars[name].cast(float).fill_null(np.nan).to_numpy()
    return values
