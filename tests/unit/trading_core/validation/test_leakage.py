"""Leakage checks: clean inputs pass, planted leaks are caught."""

import numpy as np
import polars as pl
import pytest

from trading_core.config.models import WalkForwardSection
from trading_core.features import FEATURE_COLUMNS, compute_features, label_end_ms
from trading_core.validation import purged_walk_forward_splits
from trading_core.validation.leakage import (
    feature_causality_problems,
    purge_covers_horizon,
    split_leakage_problems,
)
from trading_core.validation.walk_forward import DAY_MS, WalkForwardSplit

HOUR = 3_600_000


def _bars(n: int = 900, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.004, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.004, n))
    ts = pl.datetime_range(
        pl.datetime(2026, 1, 1, time_zone="UTC"),
        pl.datetime(2026, 1, 1, time_zone="UTC") + pl.duration(hours=n - 1),
        "1h",
        eager=True,
    ).dt.cast_time_unit("ms")
    return pl.DataFrame(
        {
            "timestamp": ts,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(10, 100, n),
        }
    )


def test_real_features_are_causal() -> None:
    bars = _bars()
    problems = feature_causality_problems(
        bars, compute_features, columns=FEATURE_COLUMNS, cut_points=[450, 700, 899]
    )
    assert problems == []


def test_planted_leaky_feature_is_caught() -> None:
    def leaky(frame: pl.DataFrame) -> pl.DataFrame:
        features = compute_features(frame)
        # a centred window: the value at t sees bars t+1..t+5
        return features.with_columns(
            pl.col("close").rolling_mean(11, center=True).alias("peek_centered")
        )

    problems = feature_causality_problems(
        _bars(), leaky, columns=[*FEATURE_COLUMNS, "peek_centered"], cut_points=[500, 800]
    )
    assert problems and all("peek_centered" in p for p in problems)


def test_clean_splits_have_no_problems() -> None:
    ts = np.arange(24 * 120, dtype=np.int64) * HOUR
    splits = purged_walk_forward_splits(ts, WalkForwardSection(), bar_ms=HOUR, label_horizon_bars=4)
    assert split_leakage_problems(splits, ts, label_end_ms=label_end_ms(ts, 4, HOUR)) == []


def test_overlapping_split_is_reported() -> None:
    ts = np.arange(100, dtype=np.int64) * HOUR
    bad = WalkForwardSplit(0, np.arange(10, 50), np.arange(50, 60), 50 * HOUR, 60 * HOUR, 48 * HOUR)
    problems = split_leakage_problems([bad], ts, label_end_ms=label_end_ms(ts, 4, HOUR))
    assert len(problems) == 1 and "purge/test span" in problems[0]


@pytest.mark.parametrize(
    ("purge_days", "horizon", "ok"),
    [(2, 4, True), (0, 1, False), (1, 24, True), (1, 25, False)],
)
def test_purge_covers_horizon_known_cases(purge_days: int, horizon: int, ok: bool) -> None:
    problem = purge_covers_horizon(
        WalkForwardSection(purge_days=purge_days), bar_ms=HOUR, label_horizon_bars=horizon
    )
    assert (problem is None) == ok
    assert DAY_MS == 24 * HOUR
