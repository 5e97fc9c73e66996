"""The 23-engine registry, real-data behaviour, incremental == vectorised, runners, alignment."""

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tests.unit.features_fixtures import REAL_OHLCV, random_walk_bars, real_bars, real_features
from trading_core.engines import (
    CONFIDENCE_COLUMNS,
    ENGINE_NAMES,
    ENGINE_REGISTRY,
    RULE_ENGINE_NAMES,
    SEED_ENGINE_NAMES,
    SIGNAL_COLUMNS,
    EngineContext,
    EngineMatrix,
    EngineSignal,
    align_series,
    engine_table_markdown,
    run_engines,
    run_rule_engines,
)
from trading_core.engines.base import guard, guard_into
from trading_core.engines.learned import ML_INPUT_COLUMNS
from trading_core.features import FEATURE_COLUMNS, compute_features
from trading_core.types import Regime


def _fake_predictor(frame: pl.DataFrame) -> np.ndarray:
    """Deterministic stand-in for the Brain Library model: uses features and rule signals."""
    x = frame.select(
        pl.col("sig_momentum") * 80.0
        - pl.col("sig_mean_reversion") * 40.0
        + pl.col("log_ret_4") * 1e3
    ).to_series()
    return x.fill_null(0.0).to_numpy()


def _eth_context(bars: pl.DataFrame, predictor: bool = False) -> EngineContext:
    btc = real_bars("BTC")
    return EngineContext(
        btc_close=align_series(bars, btc, "close"),
        funding_rate=0.0001 + 0.0003 * np.sin(np.arange(bars.height) / 50.0),
        ml_predictor=_fake_predictor if predictor else None,
    )


def test_registry_holds_23_engines_seed_names_first_ml_brain_last() -> None:
    assert len(ENGINE_NAMES) == len(set(ENGINE_NAMES)) == 23
    assert ENGINE_NAMES[:10] == SEED_ENGINE_NAMES
    assert ENGINE_NAMES[-1] == "ml_brain"
    assert ENGINE_NAMES[:-1] == RULE_ENGINE_NAMES
    assert tuple(ENGINE_REGISTRY) == ENGINE_NAMES


def test_registry_order_is_fixed() -> None:
    assert ENGINE_NAMES[10:] == (
        "funding_carry",
        "relative_strength_btc",
        "order_flow_imbalance",
        "obv_trend",
        "volatility_squeeze",
        "rsi_oscillator",
        "stochastic",
        "macd",
        "vwap_reversion",
        "ema_ribbon",
        "variance_ratio",
        "candle_pattern",
        "ml_brain",
    )


def test_specs_are_well_formed_and_families_varied() -> None:
    families = {spec.family for spec in ENGINE_REGISTRY.values()}
    assert len(families) >= 12
    for spec in ENGINE_REGISTRY.values():
        assert spec.description and "\n" not in spec.description
        assert spec.regimes and Regime.ILLIQUID not in spec.regimes
        assert all(c in FEATURE_COLUMNS or c in SIGNAL_COLUMNS for c in spec.inputs)


def test_engine_table_lists_every_engine_once() -> None:
    table = engine_table_markdown()
    lines = table.strip().splitlines()
    assert lines[0] == "| name | family | regimes | description |"
    assert len(lines) == 2 + 23
    for name in ENGINE_NAMES:
        assert sum(f"| `{name}` |" in line for line in lines) == 1


@pytest.fixture(scope="module")
def eth_matrix() -> EngineMatrix:
    features = real_features("ETH")
    return run_engines(features, _eth_context(features, predictor=True))


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_engine_on_real_candles_is_in_range_silent_in_warmup_and_not_constant(
    name: str, eth_matrix: EngineMatrix
) -> None:
    out = eth_matrix.column(name)
    warm = ENGINE_REGISTRY[name].warmup_bars
    assert np.all(np.abs(out.signal) <= 1.0) and np.all(
        (out.confidence >= 0) & (out.confidence <= 1)
    )
    assert not out.signal[:warm].any() and not out.confidence[:warm].any()
    live = out.signal[warm:]
    assert np.std(live) > 0.01, f"{name} is (nearly) constant"
    assert np.mean(live != 0.0) > 0.02, f"{name} almost never speaks"
    assert np.mean(live > 0) > 0.01 and np.mean(live < 0) > 0.01, f"{name} is one-sided"


def test_funding_carry_on_real_funding_rates_varies() -> None:
    other = REAL_OHLCV.parent / "other"
    mark = other / "binance-futures_XRP_USDT_USDT-8h-mark.parquet"
    funding = other / "binance-futures_XRP_USDT_USDT-8h-funding_rate.parquet"
    if not (mark.is_file() and funding.is_file()):
        pytest.skip("real funding data not present")
    bars = compute_features(pl.read_parquet(mark))
    rates = pl.read_parquet(funding)
    ctx = EngineContext(funding_rate=align_series(bars, rates, "funding_rate"))
    out = ENGINE_REGISTRY["funding_carry"].fn(bars, ctx)
    live = out.signal[ENGINE_REGISTRY["funding_carry"].warmup_bars :]
    assert np.std(live) > 0.01 and np.all(np.abs(live) <= 1.0)


POSITIONS = (1200, 3100, 5481)


@pytest.mark.parametrize("name", ENGINE_NAMES)
@pytest.mark.parametrize("extra", [0, 37])
def test_last_bar_of_trailing_window_equals_vectorised_value(name: str, extra: int) -> None:
    spec = ENGINE_REGISTRY[name]
    bars, full = real_bars("ETH"), real_features("ETH")
    full_ctx = _eth_context(full, predictor=True)
    vectorised = spec.fn(full, full_ctx)
    length = spec.warmup_bars + 1 + extra
    for t in POSITIONS:
        start = t - length + 1
        window = compute_features(bars.slice(start, length))
        ctx = EngineContext(
            btc_close=full_ctx.btc_close[start : t + 1],  # type: ignore[index]
            funding_rate=full_ctx.funding_rate[start : t + 1],  # type: ignore[index]
            ml_predictor=_fake_predictor,
        )
        incremental = spec.fn(window, ctx)
        assert incremental.signal[-1] == pytest.approx(vectorised.signal[t], abs=1e-9), t
        assert incremental.confidence[-1] == pytest.approx(vectorised.confidence[t], abs=1e-9), t


def test_run_rule_engines_columns_match_matrix() -> None:
    features = real_features("BTC").tail(1500)
    ctx = EngineContext(btc_close=features["close"].to_numpy())
    frame = run_rule_engines(features, ctx)
    assert frame.columns == [*SIGNAL_COLUMNS, *CONFIDENCE_COLUMNS]
    assert frame.height == features.height and len(frame.columns) == 44
    matrix = run_engines(features, ctx)
    np.testing.assert_array_equal(frame.select(SIGNAL_COLUMNS).to_numpy(), matrix.signals[:, :22])
    np.testing.assert_array_equal(
        frame.select(CONFIDENCE_COLUMNS).to_numpy(), matrix.confidences[:, :22]
    )
    assert not matrix.signals[:, 22].any(), "ml_brain must abstain without a predictor"


def test_ml_predictor_sees_features_and_rule_signals() -> None:
    seen: list[list[str]] = []

    def predictor(frame: pl.DataFrame) -> np.ndarray:
        seen.append(frame.columns)
        return np.zeros(frame.height)

    features = compute_features(random_walk_bars(450, seed=2))
    run_engines(features, EngineContext(ml_predictor=predictor))
    assert set(ML_INPUT_COLUMNS) <= set(seen[0])


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((450, 2))])
def test_ml_predictor_with_wrong_shape_raises(bad: np.ndarray) -> None:
    features = compute_features(random_walk_bars(450, seed=2))
    with pytest.raises(ValueError, match="ml_predictor returned shape"):
        run_engines(features, EngineContext(ml_predictor=lambda f: bad))


def test_non_finite_prediction_abstains_on_that_bar() -> None:
    features = compute_features(random_walk_bars(450, seed=2))
    preds = np.full(450, 10.0)
    preds[-1] = np.nan
    out = run_engines(features, EngineContext(ml_predictor=lambda f: preds)).column("ml_brain")
    assert out.signal[-1] == 0.0 and out.signal[-2] == pytest.approx(np.tanh(10 / 50))


def test_context_of_wrong_length_raises() -> None:
    features = compute_features(random_walk_bars(100, seed=2))
    with pytest.raises(ValueError, match="btc_close has shape"):
        run_engines(features, EngineContext(btc_close=np.ones(99)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ml_scale_bps": 0.0}, "ml_scale_bps"),
        ({"ml_scale_bps": float("nan")}, "ml_scale_bps"),
        ({"btc_close": [1.0, 2.0]}, "btc_close"),
        ({"funding_rate": np.ones((2, 2))}, "funding_rate"),
        ({"ml_predictor": 3}, "ml_predictor"),
    ],
)
def test_bad_context_raises(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EngineContext(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("signal", "confidence", "message"),
    [
        ([0.0, 1.5], [0.1, 0.1], "must be in"),
        ([0.0, np.nan], [0.1, 0.1], "NaN"),
        ([0.0, 0.5], [0.1, -0.1], "must be in"),
        ([0.0], [0.1, 0.1], "same length"),
    ],
)
def test_engine_signal_rejects_bad_values(
    signal: list[float], confidence: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        EngineSignal(np.array(signal), np.array(confidence))


def test_missing_feature_column_names_it() -> None:
    with pytest.raises(KeyError, match="ma_gap_20_100_atr"):
        ENGINE_REGISTRY["trend_v1"].fn(random_walk_bars(10, seed=0), EngineContext())


def _stamps(hours: list[float]) -> list[datetime]:
    return [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in hours]


def test_align_series_takes_latest_value_at_or_before_each_bar() -> None:
    bars = pl.DataFrame({"timestamp": _stamps([0, 1, 2, 3, 4])}).with_columns(
        pl.col("timestamp").dt.cast_time_unit("ms")
    )
    other = pl.DataFrame({"timestamp": _stamps([0.5, 2, 3.9]), "rate": [1.0, 2.0, 3.0]})
    got = align_series(bars, other, "rate")
    np.testing.assert_array_equal(got, [np.nan, 1.0, 2.0, 2.0, 3.0])


def test_align_series_is_causal_future_rows_change_nothing() -> None:
    bars = pl.DataFrame({"timestamp": _stamps([0, 1, 2])}).with_columns(
        pl.col("timestamp").dt.cast_time_unit("ms")
    )
    other = pl.DataFrame({"timestamp": _stamps([0, 1]), "close": [5.0, 6.0]})
    later = pl.concat([other, pl.DataFrame({"timestamp": _stamps([2.5]), "close": [99.0]})])
    np.testing.assert_array_equal(
        align_series(bars, other, "close"), align_series(bars, later, "close")
    )


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (pl.DataFrame({"timestamp": _stamps([1, 0]), "x": [1.0, 2.0]}), "sorted"),
        (pl.DataFrame({"timestamp": _stamps([0]), "y": [1.0]}), "no column 'x'"),
        (pl.DataFrame({"t": [1], "x": [1.0]}), "lacks a 'timestamp'"),
    ],
)
def test_align_series_bad_input_raises(other: pl.DataFrame, message: str) -> None:
    bars = pl.DataFrame({"timestamp": _stamps([0, 1])})
    with pytest.raises(ValueError, match=message):
        align_series(bars, other, "x")


def test_engines_are_deterministic() -> None:
    features = compute_features(random_walk_bars(500, seed=8))
    ctx = EngineContext(btc_close=np.linspace(1, 2, 500), ml_predictor=_fake_predictor)
    a, b = run_engines(features, ctx), run_engines(features, ctx)
    np.testing.assert_array_equal(a.signals, b.signals)
    np.testing.assert_array_equal(a.confidences, b.confidences)


def test_long_frame_by_symbol_equals_per_coin() -> None:
    coins = [
        random_walk_bars(520, seed=s, vol=v).with_columns(pl.lit(name).alias("symbol"))
        for s, v, name in ((1, 0.01, "A/USDT"), (2, 0.03, "B/USDT"), (3, 0.005, "C/USDT"))
    ]
    btc = [np.exp(np.linspace(0, 0.1 * k, 520)) for k in range(1, 4)]
    long = compute_features(pl.concat(coins), by="symbol")
    ctx = EngineContext(btc_close=np.concatenate(btc), ml_predictor=_fake_predictor)
    matrix = run_engines(long, ctx, by="symbol")
    for k, part in enumerate(coins):
        single = run_engines(
            compute_features(part), EngineContext(btc_close=btc[k], ml_predictor=_fake_predictor)
        )
        rows = slice(520 * k, 520 * (k + 1))
        np.testing.assert_allclose(matrix.signals[rows], single.signals, atol=1e-12)
        np.testing.assert_allclose(matrix.confidences[rows], single.confidences, atol=1e-12)


def test_long_frame_needs_contiguous_coins() -> None:
    a = random_walk_bars(10, seed=1).with_columns(pl.lit("A").alias("symbol"))
    b = random_walk_bars(10, seed=2).with_columns(pl.lit("B").alias("symbol"))
    mixed = pl.concat([a.head(5), b, a.tail(5)])
    with pytest.raises(ValueError, match="contiguous"):
        run_engines(compute_features(mixed, by="symbol"), EngineContext(), by="symbol")


@pytest.mark.parametrize(
    ("signal", "confidence", "silent", "expected"),
    [
        (0.5, 0.4, False, (0.5, 0.4)),
        (1.7, 1.2, False, (1.0, 1.0)),
        (-3.0, -0.1, False, (-1.0, 0.0)),
        (0.5, 0.4, True, (0.0, 0.0)),
        (np.nan, 0.4, False, (0.0, 0.0)),
        (0.5, np.inf, False, (0.0, 0.0)),
        (-np.inf, 0.4, False, (0.0, 0.0)),
    ],
)
def test_guard_known_answers(
    signal: float, confidence: float, silent: bool, expected: tuple[float, float]
) -> None:
    sig, conf = guard(np.array([signal]), np.array([confidence]), np.array([silent]))
    assert (sig[0], conf[0]) == expected


def test_guard_into_writes_matrix_column_and_silences_warmup_rows() -> None:
    signals = np.full((5, 3), 9.0, order="F")
    confidences = np.full((5, 3), 9.0, order="F")
    raw = np.array([0.1, -0.2, 0.3, 2.0, np.nan])
    guard_into(raw, np.full(5, 0.5), np.arange(5), 2, signals[:, 1], confidences[:, 1])
    np.testing.assert_array_equal(signals[:, 1], [0.0, 0.0, 0.3, 1.0, 0.0])
    np.testing.assert_array_equal(confidences[:, 1], [0.0, 0.0, 0.5, 0.5, 0.0])
    assert (signals[:, [0, 2]] == 9.0).all() and (confidences[:, [0, 2]] == 9.0).all()
