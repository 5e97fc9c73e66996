"""Walk-forward consensus inputs: test windows only, calibration from training bars only."""

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from trading_core.backtest import BacktestInputs, EngineVotes, consensus_walk_forward_inputs
from trading_core.config.models import EngineConfig, WalkForwardSection
from trading_core.consensus import ConsensusParams
from trading_core.costs import CostParams
from trading_core.validation.walk_forward import WalkForwardSplit, purged_walk_forward_splits

HOUR_MS = 3_600_000
N_BARS = 24 * 90
HORIZON = 4
WALK = WalkForwardSection(train_days=20, test_days=10, purge_days=1, embargo_days=0)
PARAMS = ConsensusParams((0.3, 0.3, 0.3, 0.3), 0.6, 0.8, 0.95, 0.5)
COSTS = CostParams.from_config(EngineConfig().cost_model)


def _bars(close: np.ndarray) -> pl.DataFrame:
    n = close.size
    return pl.DataFrame(
        {
            "timestamp": pl.Series(1_767_225_600_000 + HOUR_MS * np.arange(n)).cast(
                pl.Datetime("ms", "UTC")
            ),
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


def _market(seed: int) -> tuple[pl.DataFrame, EngineVotes]:
    """One engine sees the next 4 bars' direction 70 % of the time; two others are noise."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.005, N_BARS)
    close = 100.0 * np.exp(np.cumsum(returns))
    ahead = np.sign(np.concatenate([close[HORIZON:] - close[:-HORIZON], np.zeros(HORIZON)]))
    informed = np.where(rng.uniform(size=N_BARS) < 0.7, ahead, -ahead) * 0.9
    signals = np.column_stack([informed, rng.uniform(-1, 1, N_BARS), rng.uniform(-1, 1, N_BARS)])
    votes = EngineVotes(
        signals=signals,
        confidences=np.full(signals.shape, 0.9),
        regimes=np.ones(N_BARS, dtype=np.int8),  # RANGE throughout
        enabled=np.array([[False] * 3, [True, False, False], [False] * 3, [False] * 3]),
        weight_multipliers=np.ones((4, 3)),
    )
    return _bars(close), votes


def _walk(bars: pl.DataFrame, votes: EngineVotes) -> tuple[list[WalkForwardSplit], BacktestInputs]:
    timestamps = bars["timestamp"].dt.epoch("ms").to_numpy()
    splits = purged_walk_forward_splits(
        timestamps, WALK, bar_ms=HOUR_MS, label_horizon_bars=HORIZON
    )
    inputs = consensus_walk_forward_inputs(
        bars, votes, splits, symbol="W/USDT", consensus=PARAMS, cost_params=COSTS,
        horizon_bars=HORIZON,
    )  # fmt: skip
    return splits, inputs


def test_inputs_cover_exactly_the_test_windows() -> None:
    bars, votes = _market(1)
    splits, inputs = _walk(bars, votes)
    test_rows = np.concatenate([s.test_idx for s in splits])
    expected = bars["timestamp"].dt.epoch("ms").to_numpy()[test_rows]
    np.testing.assert_array_equal(inputs.timestamps_ms, expected)
    assert len(splits) >= 4


def test_a_predictive_engine_earns_a_forecast_in_its_direction() -> None:
    bars, votes = _market(2)
    _, inputs = _walk(bars, votes)
    trading = inputs.action != 0
    assert trading.mean() > 0.5
    forecast_side = np.sign(inputs.expected_return_bps[trading])
    assert np.mean(forecast_side == inputs.action[trading]) > 0.99
    assert np.all(inputs.half_spread_bps == COSTS.static_spread_bps / 2)  # no live book


def test_changing_the_last_window_never_changes_earlier_windows() -> None:
    bars, votes = _market(3)
    splits, base = _walk(bars, votes)
    last_start = int(splits[-1].test_idx[0])
    rng = np.random.default_rng(4)
    close = bars["close"].to_numpy().copy()
    close[last_start:] *= np.exp(rng.normal(0.0, 0.05, close.size - last_start))
    signals = votes.signals.copy()
    signals[last_start:] = rng.uniform(-1, 1, signals[last_start:].shape)
    _, changed = _walk(bars.with_columns(close=close), replace(votes, signals=signals))
    earlier = base.timestamps_ms < bars["timestamp"].dt.epoch("ms").to_numpy()[last_start]
    for name in ("score", "action", "confidence", "expected_return_bps"):
        np.testing.assert_array_equal(getattr(base, name)[earlier], getattr(changed, name)[earlier])
    assert not np.array_equal(base.score[~earlier], changed.score[~earlier])


def test_missing_feature_column_is_named() -> None:
    bars, votes = _market(5)
    with pytest.raises(ValueError, match="realized_vol_24"):
        _walk(bars.drop("realized_vol_24"), votes)
