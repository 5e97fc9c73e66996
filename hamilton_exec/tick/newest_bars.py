"""The fast preparation of the newest bar of every active coin: numpy across coins, no polars.

Per tick, for the coins with a fresh bar (in the order given), :class:`NewestBarPreparer`
computes what the polars reference path (``tests/integration/hamilton_oracle.py``, the test
oracle: ``prepare_coin_frame``'s functions on trailing windows) computes, as arrays with one row
per coin (:class:`NewestBars`). It is production's only newest-bar path:

* features: :func:`trading_core.features.lastbar.newest_bar_features` on each coin's last
  ``FEATURE_BARS`` bars (coins grouped by window length, one call per group);
* the 22 rule engines: ``rule_signal_arrays`` on those rows; the two engines that look back
  along a coin's own rows (BTC's 24-bar return, the 8-bar funding mean) run on small per-coin
  blocks holding exactly the rows they read (as-of BTC closes and funding rates);
* the regime: :mod:`trading_core.regime.incremental` with one carried
  :class:`~trading_core.regime.incremental.RegimeMemory` per coin, advanced by the new bar, or
  rebuilt from the window when it is out of step (first bar, a restart, a gap in the calls);
  a window shorter than the regime's frame (``history_bars`` below
  :func:`history_bars_needed`) frames the regime on the window, as the reference does;
* the warm flag, as the reference counts it (``bars_seen``).

The memories are a cache: every value is a function of the window, so the result does not
depend on when they were built. Equal to the reference path up to floating-point summation
order (``tests/integration/hamilton_exec/tick/test_hamilton_fastpath.py``).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from hamilton_exec.market_data.window import CoinWindow
from trading_core.config.models import RegimeDetectionSection
from trading_core.decision.columns import (
    ATR_PCT_COLUMN,
    SPREAD_COLUMN,
    VOLATILITY_COLUMN,
    DecisionColumns,
)
from trading_core.engines import ML_INPUT_COLUMNS, EngineContext
from trading_core.engines import flow as flow_engines
from trading_core.engines.base import guard, run_raw
from trading_core.engines.learned import ML_WARMUP_BARS
from trading_core.engines.rules import RULE_ENGINES, RULE_INPUT_COLUMNS, rule_signal_arrays
from trading_core.features import FEATURE_COLUMNS, warmup_bars
from trading_core.features.lastbar import FEATURE_INDEX, newest_bar_features
from trading_core.market.schema import OHLCV_COLUMNS, TIMESTAMP
from trading_core.regime.detector import regime_warmup_bars
from trading_core.regime.incremental import (
    RegimeMemory,
    advance_regimes,
    newest_regimes,
    regime_memory_from_window,
    tail_bars,
)
from trading_core.training.predictor import REGIME_COLUMN

FloatArray = npt.NDArray[np.float64]
_RULE_COLUMN: Final = {spec.name: j for j, spec in enumerate(RULE_ENGINES)}
_RS_BARS: Final = flow_engines.RELATIVE_STRENGTH_BARS
_FUNDING_BARS: Final = flow_engines.FUNDING_MEAN_BARS
FEATURE_BARS: Final = warmup_bars() + 1  # finite windows exact, EMAs within 1e-12 relative


def regime_frame_bars(detection: RegimeDetectionSection) -> int:
    """Bars of each coin's frame the regime of its newest bar is computed on."""
    return regime_warmup_bars(detection) + 1


def history_bars_needed(detection: RegimeDetectionSection) -> int:
    """Bars of history that make a coin's newest bar fully warm (features, engines, regime)."""
    return max(warmup_bars(), ML_WARMUP_BARS, regime_warmup_bars(detection)) + 1


@dataclass(frozen=True)
class NewestBars:
    """The newest bar of each coin, one row per coin (in the order prepared).

    ``ohlcv``: open, high, low, close, volume; ``features``: FEATURE_COLUMNS (NaN in warm-up);
    ``rule_signals`` / ``rule_confidences``: the 22 rule engines; ``regimes``: codes;
    ``warm``: past every warm-up (features, engines, regime).
    """

    symbols: tuple[str, ...]
    timeframe: str
    timestamps_ms: npt.NDArray[np.int64]
    ohlcv: FloatArray
    features: FloatArray
    rule_signals: FloatArray
    rule_confidences: FloatArray
    regimes: npt.NDArray[np.int8]
    warm: npt.NDArray[np.bool_]
    _ml: list[npt.NDArray[np.float32]] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.symbols)
        shapes = {
            "timestamps_ms": (n,),
            "ohlcv": (n, 5),
            "features": (n, len(FEATURE_COLUMNS)),
            "rule_signals": (n, len(RULE_ENGINES)),
            "rule_confidences": (n, len(RULE_ENGINES)),
            "regimes": (n,),
            "warm": (n,),
        }
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}; expected {shape}")

    def __len__(self) -> int:
        return len(self.symbols)

    def column(self, name: str) -> FloatArray:
        """One bar or feature column across coins."""
        if name in FEATURE_INDEX:
            return self.features[:, FEATURE_INDEX[name]]
        if name in OHLCV_COLUMNS[1:]:
            return self.ohlcv[:, OHLCV_COLUMNS.index(name) - 1]
        raise KeyError(f"{name!r} is neither an OHLCV column nor a feature")

    @property
    def ml_matrix(self) -> npt.NDArray[np.float32]:
        """The learned engine's inputs (ML_INPUT_COLUMNS), float32 as the models read them."""
        if not self._ml:
            matrix = np.hstack([self.features, self.rule_signals]).astype(np.float32)
            self._ml.append(np.ascontiguousarray(matrix))
        return self._ml[0]

    def ml_input(self, index: int) -> pl.DataFrame:
        """Row ``index`` as the ML input frame ``RegimeModelPredictor`` reads."""
        values = np.hstack([self.features[index], self.rule_signals[index]])
        data: dict[str, object] = {
            c: [float(v)] for c, v in zip(ML_INPUT_COLUMNS, values, strict=True)
        }
        return pl.DataFrame(data).with_columns(
            pl.Series(REGIME_COLUMN, self.regimes[index : index + 1])
        )

    def decision_columns(self) -> DecisionColumns:
        """The market columns the decision-inputs function reads, one row per coin."""
        return DecisionColumns(
            timestamps_ms=self.timestamps_ms,
            open=self.column("open"),
            close=self.column("close"),
            volume=self.column("volume"),
            atr_pct=self.column(ATR_PCT_COLUMN),
            realized_vol=self.column(VOLATILITY_COLUMN),
            candle_spread_bps=self.column(SPREAD_COLUMN),
            warm=self.warm,
            regimes=self.regimes,
        )

    def take(self, rows: Sequence[int]) -> "NewestBars":
        """Rows ``rows`` (repeats allowed) as a batch of their own."""
        index = np.asarray(rows, dtype=np.int64)
        return NewestBars(
            symbols=tuple(self.symbols[int(i)] for i in index),
            timeframe=self.timeframe,
            timestamps_ms=self.timestamps_ms[index],
            ohlcv=self.ohlcv[index],
            features=self.features[index],
            rule_signals=self.rule_signals[index],
            rule_confidences=self.rule_confidences[index],
            regimes=self.regimes[index],
            warm=self.warm[index],
        )


class NewestBarPreparer:
    """Prepares the newest bars of a tick (module docstring); owns the regime memories."""

    def __init__(
        self,
        *,
        timeframe: str,
        detection: RegimeDetectionSection,
        feature_bars: int,
        regime_frame_bars: int,
        warm_from: int,
        ml_scale_bps: float = 50.0,
    ) -> None:
        if feature_bars < tail_bars(detection):
            raise ValueError(
                f"feature_bars {feature_bars} must cover the regime's {tail_bars(detection)} bars"
            )
        self.timeframe, self.detection = timeframe, detection
        self.feature_bars, self.regime_frame_bars = feature_bars, regime_frame_bars
        self.warm_from, self.ml_scale_bps = warm_from, ml_scale_bps
        self.regime_memories: dict[str, RegimeMemory] = {}

    def prepare(
        self,
        windows: Sequence[CoinWindow],
        *,
        btc_window: CoinWindow | None = None,
        funding: Mapping[str, pl.DataFrame] | None = None,
    ) -> NewestBars:
        """The newest bar of every window (each must hold at least one bar)."""
        empty = [w.symbol for w in windows if len(w) == 0]
        if empty:
            raise ValueError(f"windows of {empty} hold no bar; append one before preparing")
        views = [w.values(self.feature_bars) for w in windows]  # (5, <= feature_bars) views
        features, ohlcv = self._features(views)
        positions = np.array([w.bars_seen - 1 for w in windows], dtype=np.int64)
        signals, confidences = self._rules(windows, features, positions, btc_window, funding or {})
        return NewestBars(
            symbols=tuple(w.symbol for w in windows),
            timeframe=self.timeframe,
            timestamps_ms=np.array([w.times(1)[0] for w in windows], dtype=np.int64),
            ohlcv=ohlcv,
            features=features,
            rule_signals=signals,
            rule_confidences=confidences,
            regimes=self._regimes(windows, views),
            warm=positions >= self.warm_from,
        )

    def _features(self, views: Sequence[FloatArray]) -> tuple[FloatArray, FloatArray]:
        """Features and OHLCV of the newest bars, coins grouped by window length."""
        features = np.empty((len(views), len(FEATURE_COLUMNS)))
        ohlcv = np.empty((len(views), 5))
        lengths = np.array([v.shape[1] for v in views])
        for length in np.unique(lengths):
            rows = np.flatnonzero(lengths == length)
            bars = np.stack([views[int(i)] for i in rows], axis=1)
            features[rows] = newest_bar_features(bars)
            ohlcv[rows] = bars[:, :, -1].T
        return features, ohlcv

    def _rules(
        self,
        windows: Sequence[CoinWindow],
        features: FloatArray,
        positions: npt.NDArray[np.int64],
        btc_window: CoinWindow | None,
        funding: Mapping[str, pl.DataFrame],
    ) -> tuple[FloatArray, FloatArray]:
        columns = {
            c: np.ascontiguousarray(features[:, FEATURE_INDEX[c]]) for c in RULE_INPUT_COLUMNS
        }
        ctx = EngineContext(ml_scale_bps=self.ml_scale_bps)
        signals, confidences = rule_signal_arrays(columns, ctx, positions)
        signals, confidences = np.ascontiguousarray(signals), np.ascontiguousarray(confidences)
        blocks = (
            ("relative_strength_btc", _relative_strength_block(windows, columns, btc_window)),
            ("funding_carry", _funding_block(windows, funding)),
        )
        for name, block in blocks:
            if block is None:
                continue  # no BTC / no funding at all: the engine abstains, as with ctx None
            values, ctx_block, width = block
            spec = RULE_ENGINES[_RULE_COLUMN[name]]
            assert spec.raw_fn is not None  # noqa: S101 - every rule spec has one
            raw_signal, raw_confidence = run_raw(
                spec.raw_fn, values, ctx_block, ctx_block_size(ctx_block)
            )
            last = np.arange(len(windows)) * width + width - 1
            j = _RULE_COLUMN[name]
            signals[:, j], confidences[:, j] = guard(
                raw_signal[last], raw_confidence[last], positions < spec.warmup_bars
            )
        return signals, confidences

    def _regimes(
        self, windows: Sequence[CoinWindow], views: Sequence[FloatArray]
    ) -> npt.NDArray[np.int8]:
        k = tail_bars(self.detection)
        stepping = [
            i
            for i, w in enumerate(windows)
            if (m := self.regime_memories.get(w.symbol)) is not None
            and m.bars_seen == w.bars_seen - 1
        ]
        close = np.full((len(stepping), k), np.nan)
        volume = np.full((len(stepping), k), np.nan)
        full = [i for i in stepping if views[i].shape[1] >= k]
        if len(full) == len(stepping) and stepping:  # the usual tick: one gather for all
            tails = np.stack([views[i][3:5, -k:] for i in stepping], axis=1)
            close, volume = tails[0], tails[1]
        for row, i in enumerate(stepping if len(full) < len(stepping) else ()):
            values = windows[i].values(k)
            close[row, k - values.shape[1] :] = values[3]
            volume[row, k - values.shape[1] :] = values[4]
        advanced = advance_regimes(
            [self.regime_memories[windows[i].symbol] for i in stepping],
            close,
            volume,
            [len(windows[i]) for i in stepping],
            self.detection,
            frame_bars=self.regime_frame_bars,
        )
        for i, memory in zip(stepping, advanced, strict=True):
            self.regime_memories[windows[i].symbol] = memory
        for i in sorted(set(range(len(windows))) - set(stepping)):
            window = windows[i]
            values = window.values()
            self.regime_memories[window.symbol] = regime_memory_from_window(
                values[3].copy(),
                values[4].copy(),
                window.bars_seen,
                self.detection,
                frame_bars=self.regime_frame_bars,
            )
        return newest_regimes([self.regime_memories[w.symbol] for w in windows], self.detection)


def ctx_block_size(ctx: EngineContext) -> int:
    series = ctx.btc_close if ctx.btc_close is not None else ctx.funding_rate
    assert series is not None  # noqa: S101 - a block always carries its series
    return int(series.shape[0])


def _as_of(
    times: npt.NDArray[np.int64], values: FloatArray, at: npt.NDArray[np.int64]
) -> FloatArray:
    """``values`` as of each ``at`` (latest time <= it; NaN before the first)."""
    index = np.searchsorted(times, at, side="right") - 1
    out: FloatArray = np.where(index >= 0, values[np.maximum(index, 0)], np.nan)
    return out


def _back_times(windows: Sequence[CoinWindow], back: int) -> npt.NDArray[np.int64]:
    """Open time of the bar ``back`` bars before each coin's newest (-1: none)."""
    out = np.full(len(windows), -1, dtype=np.int64)
    for i, window in enumerate(windows):
        times = window.times(back + 1)
        if times.size == back + 1:
            out[i] = times[0]
    return out


def _relative_strength_block(
    windows: Sequence[CoinWindow], columns: Mapping[str, FloatArray], btc: CoinWindow | None
) -> tuple[dict[str, FloatArray], EngineContext, int] | None:
    """Per coin a block of ``_RS_BARS + 1`` rows: BTC's close as of the bar ``_RS_BARS`` back
    in the first row, as of the newest bar (and the coin's features) in the last."""
    if btc is None or len(btc) == 0:
        return None
    width, n = _RS_BARS + 1, len(windows)
    btc_times, btc_close = btc.times(), btc.values()[3]
    newest = np.array([w.last_open_ms for w in windows], dtype=np.int64)
    back = _back_times(windows, _RS_BARS)
    close = np.full(n * width, np.nan)
    close[np.arange(n) * width] = np.where(back >= 0, _as_of(btc_times, btc_close, back), np.nan)
    close[np.arange(n) * width + width - 1] = _as_of(btc_times, btc_close, newest)
    values = {}
    for name in ("log_ret_24", "realized_vol_24"):
        column = np.full(n * width, np.nan)
        column[np.arange(n) * width + width - 1] = columns[name]
        values[name] = column
    return values, EngineContext(btc_close=close), width


def _funding_block(
    windows: Sequence[CoinWindow], funding: Mapping[str, pl.DataFrame]
) -> tuple[dict[str, FloatArray], EngineContext, int] | None:
    """Per coin a block of the ``_FUNDING_BARS`` funding rates as of its last bars (0 before the
    coin's first rate, NaN for a coin without any: it abstains)."""
    width, n = _FUNDING_BARS, len(windows)
    rates = np.full(n * width, np.nan)
    found = False
    for i, window in enumerate(windows):
        frame = funding.get(window.symbol)
        if frame is None or frame.height == 0:
            continue
        found = True
        times = frame[TIMESTAMP].dt.epoch("ms").to_numpy()
        values = frame["funding_rate"].cast(pl.Float64).to_numpy()
        bar_times = window.times(width)
        row = np.full(width, np.nan)
        row[width - bar_times.size :] = np.nan_to_num(_as_of(times, values, bar_times), nan=0.0)
        rates[i * width : (i + 1) * width] = row
    return ({}, EngineContext(funding_rate=rates), width) if found else None
