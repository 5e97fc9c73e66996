"""The walk-forward evaluation's decision inputs (``fit_serving_tables`` on each window's
training bars, ``decision_inputs`` on its test bars, windows concatenated): test windows only,
calibration from training bars only, warm-up bars invalid."""

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from trading_core.backtest import BacktestInputs
from trading_core.config.models import EngineConfig, WalkForwardSection
from trading_core.consensus import ConsensusParams
from trading_core.costs import CostParams
from trading_core.decision.columns import EngineVotes
from trading_core.decision.inputs import causal_reliability, decision_inputs, fit_serving_tables
from trading_core.engines import ENGINE_NAMES, ML_INPUT_COLUMNS
from trading_core.features import NO_LABEL_END_MS
from trading_core.training.dataset import CoinFrame
from trading_core.training.evaluate import concat_inputs
from trading_core.validation.walk_forward import WalkForwardSplit, purged_walk_forward_splits

HOUR_MS = 3_600_000
N_BARS = 24 * 90
HORIZON = 4
WARM_FROM = 100
WALK = WalkForwardSection(train_days=20, test_days=10, purge_days=1, embargo_days=0)
PARAMS = ConsensusParams((0.3, 0.3, 0.3, 0.3), 0.6, 0.8, 0.95, 0.5)
COSTS = CostParams.from_config(EngineConfig().cost_model)
N_ENGINES = len(ENGINE_NAMES)


def _frame(close: np.ndarray, signals: np.ndarray) -> CoinFrame:
    n = close.size
    timestamps = 1_767_225_600_000 + HOUR_MS * np.arange(n, dtype=np.int64)
    bars = pl.DataFrame(
        {
            "timestamp": pl.Series(timestamps).cast(pl.Datetime("ms", "UTC")),
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": np.full(n, 1e6),
            "atr_14_pct": np.full(n, 0.01),
            "realized_vol_24": np.full(n, 0.005),
            "spread_cs_bps": np.full(n, 3.0),
        }
    )
    label = np.full(n, np.nan)
    label[:-HORIZON] = np.log(close[HORIZON:] / close[:-HORIZON]) * 1e4
    return CoinFrame(
        symbol="W/USDT",
        timeframe="1h",
        bars=bars,
        timestamps_ms=timestamps,
        features=np.zeros((n, len(ML_INPUT_COLUMNS)), dtype=np.float32),
        rule_signals=signals[:, :-1],
        rule_confidences=np.full((n, N_ENGINES - 1), 0.9),
        regimes=np.ones(n, dtype=np.int8),  # RANGE throughout
        label_bps=label,
        label_end_ms=np.full(n, NO_LABEL_END_MS, dtype=np.int64),
        warm=np.arange(n) >= WARM_FROM,
        data_hash="",
    )


def _market(seed: int) -> tuple[CoinFrame, EngineVotes]:
    """One engine sees the next 4 bars' direction 70 % of the time; two others are noise."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.005, N_BARS)
    close = 100.0 * np.exp(np.cumsum(returns))
    ahead = np.sign(np.concatenate([close[HORIZON:] - close[:-HORIZON], np.zeros(HORIZON)]))
    informed = np.where(rng.uniform(size=N_BARS) < 0.7, ahead, -ahead) * 0.9
    signals = np.zeros((N_BARS, N_ENGINES))
    signals[:, :3] = np.column_stack(
        [informed, rng.uniform(-1, 1, N_BARS), rng.uniform(-1, 1, N_BARS)]
    )
    enabled = np.zeros((4, N_ENGINES), dtype=bool)
    enabled[1, 0] = True  # only the informed engine votes in RANGE
    votes = EngineVotes(
        signals=signals,
        confidences=np.full(signals.shape, 0.9),
        regimes=np.ones(N_BARS, dtype=np.int8),
        enabled=enabled,
        weight_multipliers=np.ones((4, N_ENGINES)),
    )
    return _frame(close, signals), votes


def _walk(frame: CoinFrame, votes: EngineVotes) -> tuple[list[WalkForwardSplit], BacktestInputs]:
    splits = purged_walk_forward_splits(
        frame.timestamps_ms, WALK, bar_ms=HOUR_MS, label_horizon_bars=HORIZON
    )
    reliability = causal_reliability(frame, votes, PARAMS, HORIZON)
    parts = []
    for split in splits:
        tables = fit_serving_tables(frame, votes, reliability, split.train_idx, PARAMS, HORIZON)
        inputs, _ = decision_inputs(
            frame, votes, reliability, split.test_idx, tables, params=PARAMS, cost_params=COSTS,
            horizon_bars=HORIZON,
        )  # fmt: skip
        parts.append(inputs)
    return splits, concat_inputs(parts)


def test_inputs_cover_exactly_the_test_windows() -> None:
    frame, votes = _market(1)
    splits, inputs = _walk(frame, votes)
    test_rows = np.concatenate([s.test_idx for s in splits])
    np.testing.assert_array_equal(inputs.timestamps_ms, frame.timestamps_ms[test_rows])
    assert len(splits) >= 4


def test_a_predictive_engine_earns_a_forecast_in_its_direction() -> None:
    frame, votes = _market(2)
    _, inputs = _walk(frame, votes)
    trading = inputs.action != 0
    assert trading.mean() > 0.5
    forecast_side = np.sign(inputs.expected_return_bps[trading])
    assert np.mean(forecast_side == inputs.action[trading]) > 0.99
    assert np.all(inputs.half_spread_bps == COSTS.static_spread_bps / 2)  # no live book


def test_changing_the_last_window_never_changes_earlier_windows() -> None:
    frame, votes = _market(3)
    splits, base = _walk(frame, votes)
    last_start = int(splits[-1].test_idx[0])
    rng = np.random.default_rng(4)
    close = frame.bars["close"].to_numpy().copy()
    close[last_start:] *= np.exp(rng.normal(0.0, 0.05, close.size - last_start))
    signals = votes.signals.copy()
    signals[last_start:] = rng.uniform(-1, 1, signals[last_start:].shape)
    changed_frame = replace(_frame(close, signals), label_bps=frame.label_bps)
    _, changed = _walk(changed_frame, replace(votes, signals=signals))
    earlier = base.timestamps_ms < frame.timestamps_ms[last_start]
    for name in ("score", "action", "confidence", "expected_return_bps"):
        np.testing.assert_array_equal(getattr(base, name)[earlier], getattr(changed, name)[earlier])
    assert not np.array_equal(base.score[~earlier], changed.score[~earlier])


def test_warm_up_bars_are_flagged_invalid() -> None:
    frame, votes = _market(6)
    warm = replace(frame, warm=np.arange(N_BARS) >= N_BARS - 24 * 5)  # the last 5 days only
    _, inputs = _walk(warm, votes)
    expected = inputs.timestamps_ms >= frame.timestamps_ms[N_BARS - 24 * 5]
    np.testing.assert_array_equal(inputs.data_valid, expected)


def test_missing_feature_column_is_named() -> None:
    frame, votes = _market(5)
    with pytest.raises(ValueError, match="realized_vol_24"):
        _walk(replace(frame, bars=frame.bars.drop("realized_vol_24")), votes)
