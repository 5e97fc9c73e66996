"""The vectorized pre-pass: per-bar arrays of one coin -> :class:`BacktestInputs`."""

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.backtest.engine import BacktestInputs
from trading_core.consensus import ConsensusResult
from trading_core.costs import CostParams, resolve_spread_bps_array


def _column(values: npt.ArrayLike, n: int, name: str) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"{name} has shape {array.shape}, expected ({n},)")
    return array


def build_inputs(
    bars: pl.DataFrame,
    *,
    symbol: str,
    consensus: ConsensusResult,
    regimes: npt.ArrayLike,
    expected_return_bps: npt.ArrayLike,
    atr: npt.ArrayLike,
    volatility_bps: npt.ArrayLike,
    cost_params: CostParams,
    candle_spread_bps: npt.ArrayLike | None = None,
    data_valid: npt.ArrayLike | None = None,
) -> BacktestInputs:
    """Assemble one coin's inputs from OHLCV ``bars`` (the market schema) and per-bar arrays.

    The spread follows the cost model's source rules (no live book in history: the candle
    estimate where finite, else the static spread). NaN forecasts become 0 (no edge).
    """
    n = bars.height
    missing = {"timestamp", "open", "close", "volume"} - set(bars.columns)
    if missing:
        raise ValueError(f"bars lack columns {sorted(missing)}; expected the OHLCV schema")
    if consensus.score.shape != (n,):
        raise ValueError(f"consensus covers {consensus.score.shape[0]} bars; bars have {n}")
    timestamps = bars["timestamp"].dt.epoch("ms").to_numpy().astype(np.int64)
    forecast = _column(expected_return_bps, n, "expected_return_bps")
    valid = np.ones(n, dtype=bool) if data_valid is None else np.asarray(data_valid, dtype=bool)
    return BacktestInputs(
        symbol=symbol,
        timestamps_ms=timestamps,
        open=bars["open"].to_numpy().astype(np.float64),
        close=bars["close"].to_numpy().astype(np.float64),
        volume=bars["volume"].to_numpy().astype(np.float64),
        atr=_column(atr, n, "atr"),
        volatility_bps=_column(volatility_bps, n, "volatility_bps"),
        half_spread_bps=resolve_spread_bps_array(cost_params, candle_spread_bps, n) / 2.0,
        regime=np.asarray(regimes).astype(np.int8),
        action=np.asarray(consensus.action).astype(np.int8),
        confidence=np.asarray(consensus.confidence, dtype=np.float64),
        score=np.asarray(consensus.score, dtype=np.float64),
        expected_return_bps=np.where(np.isfinite(forecast), forecast, 0.0),
        data_valid=valid,
    )
