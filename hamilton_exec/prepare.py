"""The newest bar of every active coin, prepared in one batched pass with polars: the reference.

Hamilton's hot path is :mod:`hamilton_exec.newest` (numpy across coins, no polars), which must
give what this path gives; this one stays as the reference for parity tests and benchmarks, and
serves when the windows are too short for the fast path's regime memories.

``prepare_coin_frame`` (what training and the walk-forward use) computes every bar of a coin's
history; Hamilton needs only the newest bar of each coin, so it runs the same trading_core
functions on the shortest trailing windows that reproduce the newest bar exactly, for all coins
at once in one long frame (``by=`` the coin):

* features: ``warmup_bars() + 1`` bars (finite windows are exact; the exponential averages are
  within 1e-12 relative, as :mod:`trading_core.features.core` states);
* regimes: ``regime_warmup_bars(detection) + 1`` bars (the detector's own guarantee);
* rule engines: only the last :data:`ENGINE_TAIL_BARS` rows of each coin, enough for the two
  engines that look back over their context series (BTC's 24-bar return, the 8-bar funding mean);
* the warm flag counts the coin's bars since Hamilton started following it (``bars_seen``), as
  ``prepare_coin_frame`` counts rows from the start of its frame.

The result is one single-row :class:`~trading_core.training.dataset.CoinFrame` per coin, which
the decision-inputs functions (:mod:`trading_core.decision.inputs`) consume as they do a history.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from hamilton_exec.newest import NewestBars
from hamilton_exec.window import COIN_COLUMN, CoinWindow, long_frame
from trading_core.config.models import RegimeDetectionSection
from trading_core.engines import ML_INPUT_COLUMNS, SIGNAL_COLUMNS, EngineContext, ml_input_frame
from trading_core.engines.learned import ML_WARMUP_BARS
from trading_core.engines.rules import RULE_INPUT_COLUMNS, rule_signal_arrays
from trading_core.features import (
    FEATURE_COLUMNS,
    NO_LABEL_END_MS,
    compute_features,
    warmup_bars,
)
from trading_core.market.schema import OHLCV_COLUMNS, TIMESTAMP
from trading_core.regime import detect_regimes
from trading_core.regime.detector import regime_warmup_bars
from trading_core.training.dataset import CoinFrame
from trading_core.training.predictor import REGIME_COLUMN

FloatArray = npt.NDArray[np.float64]
ENGINE_TAIL_BARS: Final = 32  # > the 24-bar BTC return and the 8-bar funding mean
FEATURE_BARS: Final = warmup_bars() + 1


def regime_frame_bars(detection: RegimeDetectionSection) -> int:
    """Bars of each coin's frame the regime of its newest bar is computed on."""
    return regime_warmup_bars(detection) + 1


def history_bars_needed(detection: RegimeDetectionSection) -> int:
    """Bars of history that make a coin's newest bar fully warm (features, engines, regime)."""
    return max(warmup_bars(), ML_WARMUP_BARS, regime_warmup_bars(detection)) + 1


@dataclass(frozen=True)
class PreparedBatch:
    """The newest bar of each coin (in the order given), as single-row coin frames."""

    frames: tuple[CoinFrame, ...]
    ml_inputs: pl.DataFrame  # ML_INPUT_COLUMNS + regime, one row per coin, same order

    def ml_input(self, index: int) -> pl.DataFrame:
        return self.ml_inputs.slice(index, 1)

    def as_newest(self) -> NewestBars:
        """The same bars as the arrays of the fast path (:class:`NewestBars`)."""
        if not self.frames:
            raise ValueError("an empty batch has no newest bars")
        bars = pl.concat([f.bars for f in self.frames])
        return NewestBars(
            symbols=tuple(f.symbol for f in self.frames),
            timeframe=self.frames[0].timeframe,
            timestamps_ms=np.concatenate([f.timestamps_ms for f in self.frames]),
            ohlcv=bars.select(OHLCV_COLUMNS[1:]).to_numpy().astype(np.float64),
            features=_float_matrix(bars, FEATURE_COLUMNS),
            rule_signals=np.vstack([f.rule_signals for f in self.frames]),
            rule_confidences=np.vstack([f.rule_confidences for f in self.frames]),
            regimes=np.concatenate([f.regimes for f in self.frames]).astype(np.int8),
            warm=np.concatenate([f.warm for f in self.frames]),
        )


def _float_matrix(frame: pl.DataFrame, columns: Sequence[str]) -> FloatArray:
    matrix: FloatArray = np.ascontiguousarray(
        frame.select(pl.col(list(columns)).cast(pl.Float64).fill_null(np.nan)).to_numpy()
    )
    return matrix


def prepare_newest_bars(
    windows: Sequence[CoinWindow],
    *,
    timeframe: str,
    detection: RegimeDetectionSection,
    btc_window: CoinWindow | None = None,
    funding: Mapping[str, pl.DataFrame] | None = None,
    ml_scale_bps: float = 50.0,
) -> PreparedBatch:
    """Features, rule signals, regime and warm flag of the newest bar of every window.

    Every window must hold at least one bar. ``funding`` maps a symbol to its known funding
    rates (``timestamp, funding_rate``); a symbol without any gets the funding engine's
    abstention, as ``prepare_coin_frame`` gives it without funding.
    """
    if not windows:
        return PreparedBatch((), pl.DataFrame(schema={REGIME_COLUMN: pl.Int8}))
    empty = [w.symbol for w in windows if len(w) == 0]
    if empty:
        raise ValueError(f"windows of {empty} hold no bar; append one before preparing")
    feats, positions = _features(windows)
    last_rows = _block_ends(feats)
    regimes = _newest_regimes(windows, detection)
    tail = _tail_rows(last_rows, ENGINE_TAIL_BARS)
    tail_frame = feats[tail]
    ctx = EngineContext(
        btc_close=_btc_close(tail_frame, btc_window),
        funding_rate=_funding(tail_frame, windows, funding or {}),
        ml_scale_bps=ml_scale_bps,
    )
    features = {
        c: tail_frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in RULE_INPUT_COLUMNS
    }
    signals, confidences = rule_signal_arrays(features, ctx, positions[tail])
    in_tail_last = _block_ends(tail_frame)
    newest = feats[last_rows]
    rule_signals = np.ascontiguousarray(signals[in_tail_last])
    rule_confidences = np.ascontiguousarray(confidences[in_tail_last])
    signal_frame = pl.DataFrame({c: rule_signals[:, j] for j, c in enumerate(SIGNAL_COLUMNS)})
    ml_inputs = (
        ml_input_frame(newest, signal_frame)
        .select(ML_INPUT_COLUMNS)
        .with_columns(pl.Series(REGIME_COLUMN, regimes))
    )
    matrix = ml_inputs.select(ML_INPUT_COLUMNS).to_numpy().astype(np.float32)
    warm_from = history_bars_needed(detection) - 1
    bars = newest.drop(COIN_COLUMN).with_columns(pl.Series(REGIME_COLUMN, regimes))
    frames = tuple(
        CoinFrame(
            symbol=window.symbol,
            timeframe=timeframe,
            bars=bars.slice(i, 1),
            timestamps_ms=np.array([window.last_open_ms], dtype=np.int64),
            features=matrix[i : i + 1],
            rule_signals=rule_signals[i : i + 1],
            rule_confidences=rule_confidences[i : i + 1],
            regimes=regimes[i : i + 1],
            label_bps=np.full(1, np.nan),
            label_end_ms=np.full(1, NO_LABEL_END_MS, dtype=np.int64),
            warm=np.array([window.bars_seen - 1 >= warm_from]),
            data_hash="",
        )
        for i, window in enumerate(windows)
    )
    return PreparedBatch(frames, ml_inputs)


def _features(windows: Sequence[CoinWindow]) -> tuple[pl.DataFrame, npt.NDArray[np.int64]]:
    frame, positions = long_frame(windows, FEATURE_BARS)
    return compute_features(frame, by=COIN_COLUMN), positions


def _newest_regimes(
    windows: Sequence[CoinWindow], detection: RegimeDetectionSection
) -> npt.NDArray[np.int8]:
    frame, _ = long_frame(windows, regime_frame_bars(detection))
    codes = detect_regimes(frame, detection, by=COIN_COLUMN)
    return np.ascontiguousarray(codes[_block_ends(frame)], dtype=np.int8)


def _block_ends(frame: pl.DataFrame) -> npt.NDArray[np.int64]:
    """Row index of the last row of each coin block (blocks are contiguous, in coin order)."""
    coin = frame[COIN_COLUMN].to_numpy()
    ends = np.flatnonzero(np.r_[coin[1:] != coin[:-1], True])
    return ends.astype(np.int64)


def _tail_rows(block_ends: npt.NDArray[np.int64], tail: int) -> npt.NDArray[np.int64]:
    starts = np.r_[0, block_ends[:-1] + 1]
    first = np.maximum(starts, block_ends - tail + 1)
    return np.concatenate([np.arange(a, b + 1) for a, b in zip(first, block_ends, strict=True)])


def _as_of(
    times: npt.NDArray[np.int64], values: FloatArray, at: npt.NDArray[np.int64]
) -> FloatArray:
    """``values`` as of each ``at``: the latest with time <= it (backward as-of), else NaN."""
    index = np.searchsorted(times, at, side="right") - 1
    out: FloatArray = np.where(index >= 0, values[np.maximum(index, 0)], np.nan)
    return out


def _btc_close(tail: pl.DataFrame, btc_window: CoinWindow | None) -> FloatArray | None:
    """BTC's close as of each row's timestamp (the ``align_series`` rule)."""
    if btc_window is None or len(btc_window) == 0:
        return None
    at = tail[TIMESTAMP].dt.epoch("ms").to_numpy()
    return _as_of(btc_window.times(), btc_window.values()[3], at)


def _funding(
    tail: pl.DataFrame, windows: Sequence[CoinWindow], funding: Mapping[str, pl.DataFrame]
) -> FloatArray | None:
    """Each row's latest known funding rate; 0 before a coin's first one (as
    ``prepare_coin_frame`` fills it), NaN for a coin with no funding at all (abstain)."""
    coin = tail[COIN_COLUMN].to_numpy()
    at = tail[TIMESTAMP].dt.epoch("ms").to_numpy()
    out = np.full(tail.height, np.nan)
    found = False
    for i, window in enumerate(windows):
        rates = funding.get(window.symbol)
        if rates is None or rates.height == 0:
            continue
        found = True
        rows = np.flatnonzero(coin == i)
        times = rates[TIMESTAMP].dt.epoch("ms").to_numpy()
        values = rates["funding_rate"].cast(pl.Float64).to_numpy()
        out[rows] = np.nan_to_num(_as_of(times, values, at[rows]), nan=0.0)
    return out if found else None
