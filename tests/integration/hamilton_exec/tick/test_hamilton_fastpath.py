"""Hamilton's fast path (numpy across coins) against its polars reference path (the test oracle,
``tests/integration/hamilton_oracle.py``).

* Preparation: :class:`NewestBarPreparer` equals ``prepare_newest_bars`` tick by tick, on the
  synthetic market (coins with funding, a young coin in its warm-up, coins missing bars) and
  on real Binance candles: features and rule engines within 1e-9 (summation order), the same
  null bars, the same regimes and warm flags, the same bars; also with windows shorter than
  the regime's frame (``history_bars`` below ``history_bars_needed``).
* Decisions: the batched ``prepare_decisions`` + ``decide_prepared`` (production and shadow
  books) equal the oracle ``decide_coin`` (the history path: ``decision_inputs`` on one-row
  coin frames) run coin by coin on the same prepared bars, bit for bit (events and risk
  states), with real models (flattened forests and XGBoost's own predict) and fitted serving
  tables, while positions open and close.
* The engine: a replay through the fast path makes the decisions of the reference path.
"""

import copy
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import structlog

from hamilton_exec.accounting.event_store import EventSink
from hamilton_exec.market_data.market_books import BookQuote, BookStatusLog
from hamilton_exec.market_data.window import Candle, CoinWindow, Tick, candles_of
from hamilton_exec.settings import HamiltonSettings
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from hamilton_exec.tick.coin_decisions import CoinMemory, decide_prepared, prepare_decisions
from hamilton_exec.tick.forecast import ReleaseForests
from hamilton_exec.tick.hamilton_engine import HamiltonEngine, decision_context
from hamilton_exec.tick.newest_bars import (
    FEATURE_BARS,
    NewestBarPreparer,
    NewestBars,
    history_bars_needed,
    regime_frame_bars,
)
from hamilton_exec.tick.served_release import CoinModels, ServedRelease, load_release
from tests.integration.hamilton_fixtures import (
    full_history_symbols,
    hamilton_config,
    make_release,
    market,
)
from tests.integration.hamilton_oracle import (
    coin_frame,
    decide_coin,
    prepare_newest_bars,
    use_reference_path,
)
from tests.unit.market_fixtures import require_real_data
from trading_core.brain import BrainLibrary
from trading_core.config.models import EngineConfig
from trading_core.costs import BookStatus
from trading_core.decision import EventOrigin
from trading_core.decision.inputs import ServingTables
from trading_core.market.synthetic import SyntheticMarket
from trading_core.regime import RegimeGates
from trading_core.risk import Fill, RiskEnforcer, RiskState

CAPACITY = 800
TICKS = 36
ACTIVE_TRADING: dict[str, Any] = {
    "risk": {"preset": "aggressive"},
    "consensus": {
        "min_agreement_threshold": 0.5,
        "adaptive_thresholds": {"TREND": 0.15, "RANGE": 0.15, "PANIC": 0.2, "ILLIQUID": 0.7},
    },
    "cost_model": {"min_edge_after_cost_bps": -30.0},
}


def preparer(config: EngineConfig, capacity: int = CAPACITY) -> NewestBarPreparer:
    detection = config.regime_gates.detection
    return NewestBarPreparer(
        timeframe="1h",
        detection=detection,
        feature_bars=FEATURE_BARS,
        regime_frame_bars=min(regime_frame_bars(detection), capacity),
        warm_from=history_bars_needed(detection) - 1,
        ml_scale_bps=config.consensus.ml_scale_bps,
    )


def assert_same_bars(fast: NewestBars, reference: NewestBars) -> None:
    assert fast.symbols == reference.symbols
    np.testing.assert_array_equal(fast.timestamps_ms, reference.timestamps_ms)
    np.testing.assert_array_equal(fast.ohlcv, reference.ohlcv)
    np.testing.assert_array_equal(np.isnan(fast.features), np.isnan(reference.features))
    np.testing.assert_allclose(fast.features, reference.features, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.rule_signals, reference.rule_signals, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        fast.rule_confidences, reference.rule_confidences, rtol=1e-9, atol=1e-9
    )
    np.testing.assert_array_equal(fast.regimes, reference.regimes)
    np.testing.assert_array_equal(fast.warm, reference.warm)
    np.testing.assert_allclose(fast.ml_matrix, reference.ml_matrix, rtol=1e-6, atol=1e-6)


@dataclass
class Replay:
    """Windows of several coins (and BTC's) fed bar by bar from their histories: coin ``s``
    starts with the bars before ``start[s]``, BTC with those before ``btc_start``."""

    histories: dict[str, list[Candle]]
    btc: list[Candle]
    start: dict[str, int]
    btc_start: int
    capacity: int = CAPACITY

    def ticks(self, n: int, *, skipping: str | None = None) -> Iterator[list[str]]:
        """Feed ``n`` bars; yield the coins with a fresh bar (``skipping`` misses every 5th)."""
        cursor, capacity = dict(self.start), self.capacity
        windows = {s: CoinWindow(s, capacity) for s in self.histories}
        for symbol, candles in self.histories.items():
            for candle in candles[max(0, cursor[symbol] - capacity) : cursor[symbol]]:
                windows[symbol].append(candle)
        btc = CoinWindow("BTC/USDT", capacity)
        for candle in self.btc[max(0, self.btc_start - capacity) : self.btc_start]:
            btc.append(candle)
        self.current = (windows, btc)
        for t in range(n):
            fresh = []
            for symbol in sorted(self.histories):
                if symbol == skipping and t % 5 == 1:
                    continue
                windows[symbol].append(self.histories[symbol][cursor[symbol]])
                cursor[symbol] += 1
                fresh.append(symbol)
            btc.append(self.btc[self.btc_start + t])
            yield fresh


def synthetic_replay(source: SyntheticMarket, symbols: list[str], end: datetime) -> Replay:
    start = end - timedelta(hours=TICKS + 1000)
    histories = {s: candles_of(source.fetch_ohlcv(s, "1h", start=start, end=end)) for s in symbols}
    btc = candles_of(source.fetch_ohlcv("BTC/USDT", "1h", start=start, end=end))
    offsets = {s: len(c) - TICKS - 5 for s, c in histories.items()}
    return Replay(histories, btc, offsets, len(btc) - TICKS - 5)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> EngineConfig:
    return hamilton_config(tmp_path_factory.mktemp("fastpath"), days=75, **ACTIVE_TRADING)


@pytest.fixture(scope="module")
def source(config: EngineConfig) -> SyntheticMarket:
    return market(config)


def test_fast_preparation_equals_the_reference_on_the_synthetic_market(
    config: EngineConfig, source: SyntheticMarket
) -> None:
    symbols = full_history_symbols(source)[:5]
    replay = synthetic_replay(source, symbols, source.end)
    replay.histories[symbols[2]] = replay.histories[symbols[2]][-(TICKS + 5 + 300) :]
    replay.start[symbols[2]] = 300  # a young coin: 300 bars, in its warm-up
    start, end = source.end - timedelta(days=70), source.end
    funding = {s: source.funding_rates(s, start=start, end=end) for s in symbols[:3]}
    fast_path, detection = preparer(config), config.regime_gates.detection
    checked = 0
    for fresh in replay.ticks(TICKS, skipping=sorted(symbols)[1]):
        windows, btc = replay.current
        batch = [windows[s] for s in fresh]
        fast = fast_path.prepare(batch, btc_window=btc, funding=funding)
        reference = prepare_newest_bars(
            batch, timeframe="1h", detection=detection, btc_window=btc, funding=funding
        ).as_newest()
        assert_same_bars(fast, reference)
        checked += len(fresh)
    assert checked >= TICKS * 4
    young = fast.symbols.index(symbols[2])
    assert not fast.warm[young] and fast.warm[np.arange(len(fast)) != young].all()


@pytest.mark.parametrize("capacity", [600, 60])
def test_fast_preparation_equals_the_reference_on_windows_shorter_than_the_regime_frame(
    config: EngineConfig, source: SyntheticMarket, capacity: int
) -> None:
    """``history_bars`` below ``history_bars_needed``: production frames the regime on the
    window, as the reference does (no polars fallback)."""
    assert capacity < history_bars_needed(config.regime_gates.detection)
    symbols = full_history_symbols(source)[:4]
    replay = replace(synthetic_replay(source, symbols, source.end), capacity=capacity)
    fast_path, detection = preparer(config, capacity), config.regime_gates.detection
    for fresh in replay.ticks(12, skipping=sorted(symbols)[1]):
        windows, btc = replay.current
        batch = [windows[s] for s in fresh]
        fast = fast_path.prepare(batch, btc_window=btc)
        reference = prepare_newest_bars(
            batch, timeframe="1h", detection=detection, btc_window=btc
        ).as_newest()
        assert_same_bars(fast, reference)


def test_fast_preparation_equals_the_reference_on_real_binance_candles(
    config: EngineConfig,
) -> None:
    folder = require_real_data()
    coins = ("ETH", "ADA", "DOGE", "LINK", "ANKR", "CHZ")
    histories = {
        f"{c}/USDT": candles_of(pl.read_parquet(folder / f"{c}_USDT-1h.parquet").tail(1200))
        for c in coins
    }
    btc = candles_of(pl.read_parquet(folder / "BTC_USDT-1h.parquet").tail(1200))
    replay = Replay(histories, btc, {s: 1200 - TICKS for s in histories}, 1200 - TICKS)
    fast_path, detection = preparer(config), config.regime_gates.detection
    regimes = set()
    for fresh in replay.ticks(TICKS):
        windows, btc_window = replay.current
        batch = [windows[s] for s in fresh]
        fast = fast_path.prepare(batch, btc_window=btc_window)
        reference = prepare_newest_bars(
            batch, timeframe="1h", detection=detection, btc_window=btc_window
        ).as_newest()
        assert_same_bars(fast, reference)
        regimes |= set(fast.regimes.tolist())
    assert len(regimes) >= 2


# --- decisions ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(config: EngineConfig, source: SyntheticMarket) -> ServedRelease:
    library = BrainLibrary.from_config(config)
    library.migrate()
    symbols = full_history_symbols(source)[:4]
    release = make_release(
        library, config, source, symbols, train_end=source.end - timedelta(days=3)
    )
    gates = RegimeGates.from_config(config.regime_gates)
    return load_release(
        library, release, timeframe="1h", base_gates=gates, loaded_at=datetime.now(UTC)
    )


def _coin_models(served: ServedRelease, symbols: list[str]) -> list[CoinModels]:
    """The release's models with tables that bite: correlation divisors in [1, 3] and
    positive information coefficients, different per coin (the fitted ones of this small
    market are mostly neutral)."""
    out = []
    for k, symbol in enumerate(symbols):
        models = served.coin(symbol.split("/")[0])
        rng = np.random.default_rng(k)
        tables = ServingTables(
            rng.uniform(1.0, 3.0, models.tables.cluster_divisors.shape),
            rng.uniform(0.02, 0.2, models.tables.ic_by_regime.shape),
        )
        out.append(replace(models, tables=tables))
    return out


def test_batched_decisions_equal_decide_coin_bit_for_bit(
    config: EngineConfig, source: SyntheticMarket, served: ServedRelease
) -> None:
    symbols = sorted(full_history_symbols(source)[:4])
    assert all(served.coin(s.split("/")[0]).predictor is not None for s in symbols)
    context = decision_context(config, "1h")
    enforcer = RiskEnforcer(context.decision_config.limits)
    forests = ReleaseForests.build(served)
    assert forests.forest is not None and len(forests.index) >= len(symbols)
    start = source.end - timedelta(days=3)
    paths = {
        name: Book(
            {s: CoinMemory.fresh(context.params, context.horizon_bars) for s in symbols},
            enforcer.initial_state(config.risk.initial_capital_usd, start),
        )
        for name in ("batched", "batched_xgboost", "row_by_row", "per_coin")
    }
    replay = synthetic_replay(source, symbols, source.end)
    fast_path = preparer(config)
    actions: set[str] = set()
    positions = forecasts = 0
    for t, fresh in enumerate(replay.ticks(TICKS)):
        windows, btc = replay.current
        batch = fast_path.prepare([windows[s] for s in fresh], btc_window=btc)
        invalid = ["stale_data" if t == 7 and i == 0 else "" for i in range(len(fresh))]
        models = _coin_models(served, fresh)
        events: dict[str, list[dict[str, Any]]] = {}
        for name, use in (("batched", forests), ("batched_xgboost", None)):
            path = paths[name]
            prepared = prepare_decisions(
                batch, models, [path.memories[s] for s in fresh],
                decision_context(config, "1h"), served.gates, invalid_reasons=invalid, forests=use,
            )  # fmt: skip
            events[name] = []
            for bar in prepared:
                outcome, path.state = decide_prepared(
                    bar, path.state, context, origin=EventOrigin()
                )
                events[name].append(outcome.event.to_dict())
        path, events["row_by_row"] = paths["row_by_row"], []
        for i, symbol in enumerate(fresh):  # as the shadow books call it: a row of its own
            (bar,) = prepare_decisions(
                batch.take([i]), [models[i]], [path.memories[symbol]], context, served.gates,
                invalid_reasons=[invalid[i]],
            )  # fmt: skip
            outcome, path.state = decide_prepared(bar, path.state, context, origin=EventOrigin())
            events["row_by_row"].append(outcome.event.to_dict())
        path = paths["per_coin"]
        events["per_coin"] = []
        for i, symbol in enumerate(fresh):
            outcome, path.state = decide_coin(
                coin_frame(batch, i), batch.ml_input(i), models[i], path.memories[symbol],
                path.state, context, served.gates, invalid_reason=invalid[i],
            )  # fmt: skip
            events["per_coin"].append(outcome.event.to_dict())
        assert events["batched"] == events["per_coin"] == events["batched_xgboost"]
        assert events["row_by_row"] == events["per_coin"]
        states = [p.state for p in paths.values()]
        assert all(_state(s) == _state(states[0]) for s in states)
        close = dict(zip(batch.symbols, batch.column("close").tolist(), strict=True))
        for name, path in paths.items():  # every order fills at the close, on every path
            path.state = _fill_all(path.state, enforcer, events[name], close)
        actions |= {e["action"] for e in events["per_coin"]}
        positions += len(paths["per_coin"].state.positions)
        forecasts += sum("ml_forecast_bps" in e["metadata"] for e in events["per_coin"])
    assert {"buy", "sell", "hold"} <= actions
    assert positions > 0 and forecasts > TICKS  # positions open; the models forecast


@dataclass
class Book:
    """One decision path's memories and risk state."""

    memories: dict[str, CoinMemory]
    state: RiskState


def _state(state: RiskState) -> dict[str, object]:
    return copy.deepcopy(state.to_dict())


def _fill_all(
    state: RiskState,
    enforcer: RiskEnforcer,
    events: list[dict[str, Any]],
    close: dict[str, float],
) -> RiskState:
    for event in events:
        qty = float(event["metadata"]["qty"])
        if event["action"] == "hold" or qty == 0.0:
            continue
        symbol = str(event["symbol"])
        signed = qty if event["action"] == "buy" else -qty
        filled_at = datetime.fromisoformat(str(event["timestamp"])) + timedelta(hours=1)
        state = enforcer.apply_fill(state, Fill(symbol, signed, close[symbol], 0.0, filled_at))
    return state


def _engine(config: EngineConfig, symbols: list[str], tmp: Path, reference: bool) -> HamiltonEngine:
    settings = HamiltonSettings.from_config(
        config, symbols=tuple(symbols), state_dir=tmp, metrics_port=None, health_port=None
    )
    engine = HamiltonEngine(
        config,
        settings,
        symbols,
        sink=EventSink(None, tmp / "spool.jsonl"),
        metrics=HamiltonMetrics(venue="binance"),
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    if reference:
        use_reference_path(engine)
    return engine


def test_an_engine_on_the_fast_path_decides_like_one_on_the_reference_path(
    config: EngineConfig, source: SyntheticMarket, served: ServedRelease, tmp_path: Path
) -> None:
    symbols = sorted(full_history_symbols(source)[:4])
    start = source.end - timedelta(hours=TICKS)
    engines = [_engine(config, symbols, tmp_path / str(r), r) for r in (False, True)]
    for engine in engines:
        engine.swap_release(served)
        windows = {w.symbol: w for w in [*engine.windows.values(), engine.btc_window]}
        for symbol, window in windows.items():
            history = start - timedelta(hours=CAPACITY)
            window.extend(source.fetch_ohlcv(symbol, "1h", start=history, end=start))
    frames = {
        s: candles_of(source.fetch_ohlcv(s, "1h", start=start, end=source.end))
        for s in [*symbols, "BTC/USDT"]
    }
    orders = 0
    for t in range(TICKS):
        candles = {s: frames[s][t] for s in frames}
        tick = Tick(candles["BTC/USDT"].open_ms, candles, start + timedelta(hours=t + 1))
        fast, reference = (engine.on_tick(tick) for engine in engines)
        for a, b in zip(fast.events, reference.events, strict=True):
            assert (a.symbol, a.action, a.regime, a.reasons) == (
                b.symbol,
                b.action,
                b.regime,
                b.reasons,
            )
            assert a.consensus_score == pytest.approx(b.consensus_score, abs=1e-9)
            assert a.net_edge_bps == pytest.approx(b.net_edge_bps, rel=1e-9, abs=1e-6)
            assert a.qty == pytest.approx(b.qty, rel=1e-9)
        orders += len(fast.orders)
    assert orders > 0


def test_streamed_books_price_the_spread_and_a_stale_one_holds_the_coin(
    config: EngineConfig, source: SyntheticMarket, served: ServedRelease, tmp_path: Path
) -> None:
    symbols = sorted(full_history_symbols(source)[:3])
    fresh, stale, missing = symbols
    start = source.end - timedelta(hours=2)
    engine = _engine(config, symbols, tmp_path, reference=False)
    engine.swap_release(served)
    for symbol, window in {
        w.symbol: w for w in [*engine.windows.values(), engine.btc_window]
    }.items():
        window.extend(
            source.fetch_ohlcv(symbol, "1h", start=start - timedelta(hours=CAPACITY), end=start)
        )
    candles = {
        s: candles_of(source.fetch_ohlcv(s, "1h", start=start, end=start + timedelta(hours=1)))[0]
        for s in [*symbols, "BTC/USDT"]
    }
    now = start + timedelta(hours=1)
    max_age_s = config.hamilton.market_data.max_book_age_s
    price = candles[fresh].close
    books = {
        fresh: BookQuote(fresh, price * 0.995, price * 1.005, 1.0, 1.0, now - timedelta(seconds=1)),
        stale: BookQuote(stale, 1.0, 1.001, 1.0, 1.0, now - timedelta(seconds=max_age_s + 5)),
    }
    report = engine.on_tick(Tick(candles["BTC/USDT"].open_ms, candles, now, books=books))
    by_symbol = {e.symbol: e for e in report.events}
    assert by_symbol[fresh].costs.spread_source == "book"
    assert by_symbol[fresh].costs.spread_bps == pytest.approx(100.0, rel=1e-6)
    for symbol, reason in ((stale, "book_stale"), (missing, "book_missing")):
        event = by_symbol[symbol]
        assert event.action == "hold" and "stale_book" in event.reasons
        assert event.costs.spread_fallback == reason
        assert event.costs.spread_source in ("candles", "static")
    fallbacks = engine.metrics.spread_fallbacks
    assert fallbacks.labels("book_stale")._value.get() == 1
    assert fallbacks.labels("book_missing")._value.get() == 1
    assert engine.metrics.stale_market_data.labels("book")._value.get() == 2


def test_book_status_log_speaks_once_per_change() -> None:
    log = BookStatusLog()
    with structlog.testing.capture_logs() as logs:
        for status in (BookStatus.STALE, BookStatus.STALE, BookStatus.MISSING, BookStatus.FRESH):
            log.note("X/USDT", status, 12.0, 10.0)
        log.note("Y/USDT", BookStatus.FRESH, 1.0, 10.0)
    assert [(e["event"], e.get("status")) for e in logs] == [
        ("book_stale", "stale"),
        ("book_stale", "missing"),
        ("book_fresh_again", None),
    ]
