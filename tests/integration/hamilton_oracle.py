"""Test oracles of Hamilton's production paths (not imported by production code).

* :func:`prepare_newest_bars`: the newest bar of every active coin prepared with polars, running
  the very trading_core functions training uses (``compute_features``, ``detect_regimes``,
  ``rule_signal_arrays``) on trailing windows; the production path
  (:class:`hamilton_exec.tick.newest_bars.NewestBarPreparer`, numpy across coins) must give what it
  gives.
  :func:`use_reference_path` makes an engine prepare its ticks with it (parity tests, the
  benchmark's peer).
* :func:`decide_coin`: one coin's decision through the history path (``decision_inputs`` on a
  single-row :class:`CoinFrame`, ``bar_inputs_at``, ``decide_bar``), the oracle of the batched
  ``prepare_decisions`` + ``decide_prepared`` that production and the shadow books run.

``prepare_coin_frame`` computes every bar of a coin's history; the oracle needs only the newest
bar of each coin, so it runs the same functions on the shortest trailing windows that reproduce
the newest bar exactly, for all coins at once in one long frame (``by=`` the coin):

* features: ``warmup_bars() + 1`` bars (finite windows are exact; the exponential averages are
  within 1e-12 relative, as :mod:`trading_core.features.core` states);
* regimes: ``regime_warmup_bars(detection) + 1`` bars (the detector's own guarantee);
* rule engines: only the last :data:`ENGINE_TAIL_BARS` rows of each coin, enough for the two
  engines that look back over their context series (BTC's 24-bar return, the 8-bar funding mean);
* the warm flag counts the coin's bars since Hamilton started following it (``bars_seen``), as
  ``prepare_coin_frame`` counts rows from the start of its frame.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from hamilton_exec.market_data.window import COIN_COLUMN, CoinWindow, long_frame
from hamilton_exec.tick.coin_decisions import CoinDecision, CoinMemory, DecisionContext
from hamilton_exec.tick.hamilton_engine import HamiltonEngine
from hamilton_exec.tick.newest_bars import (
    FEATURE_BARS,
    NewestBars,
    history_bars_needed,
    regime_frame_bars,
)
from hamilton_exec.tick.served_release import CoinModels
from trading_core.backtest import bar_inputs_at
from trading_core.config.models import RegimeDetectionSection
from trading_core.consensus import engine_votes as vote_records
from trading_core.costs import BookTop
from trading_core.decision import EventOrigin, consensus_row, decide_bar, decision_event
from trading_core.decision.inputs import decision_inputs, engine_votes, ml_vote
from trading_core.decision.step import NO_ORIGIN
from trading_core.engines import (
    ENGINE_NAMES,
    ML_INPUT_COLUMNS,
    SIGNAL_COLUMNS,
    EngineContext,
    ml_input_frame,
)
from trading_core.engines.rules import RULE_INPUT_COLUMNS, rule_signal_arrays
from trading_core.features import FEATURE_COLUMNS, NO_LABEL_END_MS, compute_features
from trading_core.market.schema import OHLCV_COLUMNS, OHLCV_SCHEMA, TIMESTAMP
from trading_core.regime import RegimeGates, detect_regimes
from trading_core.risk import RiskState
from trading_core.training.dataset import CoinFrame
from trading_core.training.predictor import REGIME_COLUMN

FloatArray = npt.NDArray[np.float64]
ENGINE_TAIL_BARS: Final = 32  # > the 24-bar BTC return and the 8-bar funding mean


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


def use_reference_path(engine: HamiltonEngine) -> None:
    """Make ``engine`` prepare its ticks with :func:`prepare_newest_bars`."""

    def prepare(windows: list[CoinWindow]) -> NewestBars:
        return prepare_newest_bars(
            windows,
            timeframe=engine.settings.timeframe,
            detection=engine.config.regime_gates.detection,
            btc_window=engine.btc_window,
            funding=engine.funding,
            ml_scale_bps=engine.context.ml_scale_bps,
        ).as_newest()

    engine.prepare_newest = prepare  # type: ignore[method-assign]


def coin_frame(batch: NewestBars, index: int) -> CoinFrame:
    """Row ``index`` of a batch as the single-row CoinFrame the history path reads."""
    data: dict[str, object] = {TIMESTAMP: batch.timestamps_ms[index : index + 1]}
    data |= {c: batch.ohlcv[index : index + 1, j] for j, c in enumerate(OHLCV_COLUMNS[1:])}
    data |= {c: batch.features[index : index + 1, j] for j, c in enumerate(FEATURE_COLUMNS)}
    bars = pl.DataFrame(data).with_columns(
        pl.col(TIMESTAMP).cast(OHLCV_SCHEMA[TIMESTAMP]),
        pl.col(list(FEATURE_COLUMNS)).fill_nan(None),
        pl.Series(REGIME_COLUMN, batch.regimes[index : index + 1]),
    )
    return CoinFrame(
        symbol=batch.symbols[index],
        timeframe=batch.timeframe,
        bars=bars,
        timestamps_ms=batch.timestamps_ms[index : index + 1].copy(),
        features=batch.ml_matrix[index : index + 1],
        rule_signals=batch.rule_signals[index : index + 1],
        rule_confidences=batch.rule_confidences[index : index + 1],
        regimes=batch.regimes[index : index + 1],
        label_bps=np.full(1, np.nan),
        label_end_ms=np.full(1, NO_LABEL_END_MS, dtype=np.int64),
        warm=batch.warm[index : index + 1],
        data_hash="",
    )


def decide_coin(
    frame: CoinFrame,
    ml_row: Any,
    models: CoinModels,
    memory: CoinMemory,
    state: RiskState,
    context: DecisionContext,
    gates: RegimeGates,
    *,
    book: BookTop | None = None,
    invalid_reason: str = "",
    origin: EventOrigin = NO_ORIGIN,
) -> tuple[CoinDecision, RiskState]:
    """Decide the coin's newest bar through the history path and advance its memory.

    ``invalid_reason`` (stale or rejected data) forces a hold with that reason; a bar still in
    its warm-up holds with ``warming_up``. The spread handed to ``decide_bar`` is the one the
    history path resolved (no live book), as the pre-refactor per-coin path did.
    """
    forecast = np.full(1, np.nan) if models.predictor is None else models.predictor(ml_row)
    signal, confidence = ml_vote(forecast, context.ml_scale_bps)
    votes = engine_votes(frame, signal, confidence, gates)
    regime = int(frame.regimes[0])
    close = float(frame.bars["close"][0])
    memory.close_outcomes(close)
    reliability = memory.reliability(regime)
    memory.remember(votes.signals[0], regime, close)
    inputs, result = decision_inputs(
        frame,
        votes,
        reliability,
        np.zeros(1, dtype=np.int64),
        models.tables,
        params=context.params,
        cost_params=context.cost_params,
        horizon_bars=context.horizon_bars,
        ml_forecast_bps=forecast,
    )
    bar = bar_inputs_at(inputs, 0, context.decision_config)
    records = vote_records(
        ENGINE_NAMES, votes.signals[0], votes.confidences[0], result.weights[0],
        votes.enabled[regime],
    )  # fmt: skip
    bar = replace(
        bar,
        consensus=consensus_row(result, 0, records),
        book=book,
        data_valid=bar.data_valid and not invalid_reason,
        invalid_reason=invalid_reason or ("" if bar.data_valid else "warming_up"),
        edge_source="ml_brain" if math.isfinite(float(forecast[0])) else "consensus",
    )
    decision, state = decide_bar(bar, state, config=context.decision_config)
    finite = math.isfinite(float(forecast[0]))
    event = decision_event(
        decision, bar, risk_preset=context.risk_preset, model_version=models.version_for(regime),
        origin=origin, extras={"ml_forecast_bps": float(forecast[0])} if finite else None,
    )  # fmt: skip
    outcome = CoinDecision(
        decision=decision,
        inputs=bar,
        event=event,
        signals=votes.signals[0],
        weights=np.asarray(result.weights[0]),
        forecast_bps=float(forecast[0]),
    )
    return outcome, state
