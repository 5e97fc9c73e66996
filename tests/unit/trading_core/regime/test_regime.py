"""Regime detector: hysteresis rules, priority, causality, window reproduction, flapping,
agreement with the synthetic market's true regimes."""

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from tests.unit.features_fixtures import bars_from_close, random_walk_bars, real_bars
from trading_core.config.models import RegimeDetectionSection, SyntheticMarketSection
from trading_core.market.synthetic import SyntheticMarket
from trading_core.regime import (
    apply_hysteresis,
    detect_regimes,
    raw_regimes,
    raw_warmup_bars,
    regime_warmup_bars,
)
from trading_core.types import REGIME_CODES, Regime

T, R, P, ILQ = (
    REGIME_CODES[r] for r in (Regime.TREND, Regime.RANGE, Regime.PANIC, Regime.ILLIQUID)
)
DETECTION = RegimeDetectionSection()


def _codes(labels: str) -> np.ndarray:
    return np.array([{"T": T, "R": R, "P": P, "I": ILQ}[c] for c in labels], dtype=np.int8)


@pytest.mark.parametrize(
    ("raw", "jumps", "memory", "expected"),
    [
        # a two-bar TREND blip never takes over a confirmed RANGE
        ("RRRTTRRR", "", 24, "RRRRRRRR"),
        # three TREND bars do
        ("RRRTTTRR", "", 24, "RRRRRTTT"),
        # a jump confirms PANIC at once, and it holds until another label persists
        ("RRRPRRRR", "3", 24, "RRRPPPRR"),
        # PANIC without a jump waits like any label
        ("RRRPPRRR", "", 24, "RRRRRRRR"),
        # flapping longer than the memory falls back to the trailing mode (ties: priority)
        ("RRRTPTPTPP", "", 2, "RRRRRTPTPP"),
        # before the first confirmation: the trailing mode
        ("TRT", "", 24, "TTT"),
    ],
)
def test_hysteresis_known_sequences(raw: str, jumps: str, memory: int, expected: str) -> None:
    immediate = np.zeros(len(raw), dtype=bool)
    immediate[[int(j) for j in jumps]] = True
    got = apply_hysteresis(_codes(raw), immediate, hysteresis_bars=3, state_memory_bars=memory)
    assert got.tolist() == _codes(expected).tolist()


def test_warmup_bars_of_the_defaults() -> None:
    assert raw_warmup_bars(DETECTION) == 24 + 720 - 1
    assert regime_warmup_bars(DETECTION) == 743 + 24 + 3 - 1


def test_labels_are_illiquid_during_warmup_and_codes_valid() -> None:
    labels = detect_regimes(real_bars("BTC"), DETECTION)
    assert labels.dtype == np.int8
    assert np.all(labels[: raw_warmup_bars(DETECTION)] == ILQ)
    assert set(np.unique(labels)) <= set(REGIME_CODES.values())
    assert len(set(labels[regime_warmup_bars(DETECTION) :].tolist())) == 4


def test_zero_volume_is_illiquid_even_in_a_crash() -> None:
    close = np.r_[np.full(800, 100.0) * np.exp(np.cumsum(np.full(800, 1e-4))), [60.0, 40.0]]
    volume = np.r_[np.full(800, 1_000.0), [0.0, 0.0]]
    bars = bars_from_close(close, volume=volume)
    raw, immediate = raw_regimes(bars, DETECTION, dollar_volume_window_bars=1)
    assert raw[-1] == ILQ and not immediate[-1]


def test_jump_enters_panic_on_the_same_bar() -> None:
    bars = random_walk_bars(900, seed=3, vol=0.005)
    crash = bars.with_columns(
        pl.when(pl.int_range(pl.len()) >= 880).then(pl.col(c) * 0.85).otherwise(pl.col(c)).alias(c)
        for c in ("high", "low", "close")
    )
    labels = detect_regimes(crash, DETECTION)
    assert labels[880] == P and labels[879] != P


def test_trend_and_range_are_told_apart() -> None:
    rng = np.random.default_rng(0)
    quiet = np.exp(np.cumsum(0.004 * rng.standard_normal(800)))
    trend = quiet[-1] * np.exp(np.cumsum(0.004 + 0.002 * rng.standard_normal(100)))
    labels = detect_regimes(bars_from_close(np.r_[quiet, trend]), DETECTION)
    assert labels[-1] == T
    assert np.mean(labels[780:800] == R) > 0.5


@pytest.mark.parametrize("t", [700, 800, 1500, 3333, 5481])
def test_truncating_after_t_leaves_label_at_t_unchanged(t: int) -> None:
    bars = real_bars("ETH")
    full = detect_regimes(bars, DETECTION)
    assert detect_regimes(bars.head(t + 1), DETECTION)[t] == full[t]


@pytest.mark.parametrize("coin", ["ETH", "DOGE", "ADA"])
@pytest.mark.parametrize("extra", [0, 30])
def test_trailing_window_reproduces_label(coin: str, extra: int) -> None:
    bars = real_bars(coin)
    full = detect_regimes(bars, DETECTION)
    length = regime_warmup_bars(DETECTION) + 1 + extra
    for t in range(length + 5, bars.height, 97):
        window = bars.slice(t - length + 1, length)
        assert detect_regimes(window, DETECTION)[-1] == full[t], t


def _run_lengths(labels: np.ndarray) -> np.ndarray:
    bounds = np.r_[0, np.flatnonzero(np.diff(labels)) + 1, labels.size]
    return np.diff(bounds)


def test_hysteresis_removes_flaps_on_real_candles() -> None:
    """A flap is a label run shorter than hysteresis_bars. Raw labels have 76-111 per coin on
    these candles; the detector keeps at most a handful (a jump's PANIC, a confirmation right
    before a jump)."""
    warm = regime_warmup_bars(DETECTION)
    h = DETECTION.hysteresis_bars
    for coin in ("BTC", "ETH", "DOGE", "ADA", "XRP"):
        bars = real_bars(coin)
        raw, _ = raw_regimes(bars, DETECTION)
        labels = detect_regimes(bars, DETECTION)
        raw_flaps = int(np.sum(_run_lengths(raw[warm:]) < h))
        flaps = int(np.sum(_run_lengths(labels[warm:]) < h))
        assert raw_flaps > 50, coin
        assert flaps <= 0.1 * raw_flaps, coin
        assert np.count_nonzero(np.diff(labels[warm:])) < np.count_nonzero(np.diff(raw[warm:]))


def test_random_flapping_raw_labels_are_smoothed() -> None:
    rng = np.random.default_rng(5)
    raw = rng.choice([T, R], size=5_000, p=[0.3, 0.7]).astype(np.int8)
    out = apply_hysteresis(raw, np.zeros(raw.size, bool), hysteresis_bars=3)
    assert np.count_nonzero(np.diff(out)) < 0.25 * np.count_nonzero(np.diff(raw))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vol_window_bars": 0}, "vol_window_bars"),
        ({"state_memory_bars": -1}, "state_memory_bars"),
        ({"min_dollar_volume_usd_per_bar": -5.0}, "min_dollar_volume"),
    ],
)
def test_bad_parameters_raise(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detect_regimes(random_walk_bars(10, seed=0), DETECTION, **kwargs)  # type: ignore[arg-type]


def test_detected_regimes_agree_with_synthetic_truth_better_than_chance() -> None:
    """Balanced accuracy (mean recall over the four regimes; chance = 0.25) on 12 synthetic
    coins x 1 year after warm-up. Measured ~0.52 with the config defaults (TREND recall is low:
    the simulator's trends are weak against a 48-bar efficiency ratio at 0.35)."""
    market = SyntheticMarket(SyntheticMarketSection(n_coins=12))
    confusion = np.zeros((4, 4), dtype=np.int64)
    warm = regime_warmup_bars(DETECTION)
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    for symbol in market.list_symbols():
        bars = market.fetch_ohlcv(symbol, "1h", start=start, end=end)
        truth = market.true_regimes(symbol)["regime"].replace_strict(
            {r.value: c for r, c in REGIME_CODES.items()}, return_dtype=pl.Int8
        )
        labels = detect_regimes(bars, DETECTION)
        np.add.at(confusion, (truth.to_numpy()[warm:], labels[warm:]), 1)
    recall = confusion.diagonal() / confusion.sum(axis=1)
    assert recall.mean() > 0.40, (recall, confusion)
    assert recall[P] > 0.5 and recall[ILQ] > 0.25 and recall[R] > 0.7


def test_long_frame_by_symbol_equals_per_coin() -> None:
    coins = [
        real_bars(c).tail(1500).with_columns(pl.lit(c).alias("symbol")) for c in ("ETH", "ADA")
    ]
    long = detect_regimes(pl.concat(coins), DETECTION, by="symbol")
    for k, part in enumerate(coins):
        single = detect_regimes(part, DETECTION)
        assert long[1500 * k : 1500 * (k + 1)].tolist() == single.tolist()
