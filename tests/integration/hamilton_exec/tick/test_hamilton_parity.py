"""Hamilton's bar-by-bar decisions equal the backtest's over the same period.

The reference is the training side's path over the whole history at once: ``prepare_coin_frame``
over every bar from Hamilton's warm-up start, the release's models, ``engine_votes``,
``causal_reliability``, ``decision_inputs`` on the replay bars and ``run_backtest`` (next-open
fills). Hamilton computes each bar from its trailing windows and its carried memory.
"""

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, ReplayWindow
from hamilton_exec.tick.hamilton_engine import TickReport
from hamilton_exec.tick.served_release import ServedRelease
from tests.integration.hamilton_fixtures import (
    coin_frame,
    full_history_symbols,
    hamilton_config,
    make_release,
    market,
)
from trading_core.backtest import BacktestConfig, run_backtest
from trading_core.brain import BrainLibrary
from trading_core.config.models import EngineConfig
from trading_core.consensus import ConsensusParams
from trading_core.costs import CostParams
from trading_core.decision.inputs import causal_reliability, decision_inputs, engine_votes, ml_vote
from trading_core.decision.kernel import REASON_BY_CODE
from trading_core.engines import SIGNAL_COLUMNS
from trading_core.events import DecisionEvent
from trading_core.market.synthetic import SyntheticMarket
from trading_core.training.predictor import REGIME_COLUMN
from trading_core.types import REGIMES

REPLAY_DAYS = 3
ORDER_REASONS = ("opened", "flipped", "closed_opposite_signal", "closed_holding_elapsed")
# Loose thresholds so that the compared period has orders, flips, closes and denials.
ACTIVE_TRADING = {
    "risk": {"preset": "aggressive"},
    "consensus": {
        "min_agreement_threshold": 0.5,
        "adaptive_thresholds": {"TREND": 0.15, "RANGE": 0.15, "PANIC": 0.2, "ILLIQUID": 0.7},
    },
    "cost_model": {"min_edge_after_cost_bps": -30.0},
}


@dataclass
class Run:
    config: EngineConfig
    source: SyntheticMarket
    library: BrainLibrary
    served: ServedRelease
    window: ReplayWindow
    reports: list[TickReport]
    symbols: tuple[str, ...]


def _run(tmp: Path, n_symbols: int, name: str) -> Run:
    config = hamilton_config(tmp / name, **ACTIVE_TRADING)
    source = market(config)
    symbols = tuple(full_history_symbols(source)[:n_symbols])
    library = BrainLibrary.from_config(config)
    library.migrate()
    make_release(
        library, config, source, symbols, train_end=source.end - timedelta(days=REPLAY_DAYS)
    )
    window = ReplayWindow(source.end - timedelta(days=REPLAY_DAYS), source.end)
    settings = HamiltonSettings.from_config(
        config, symbols=symbols, replay=window, metrics_port=None, health_port=None
    )
    prepared = build_service(config, settings, library=library, source=source)
    reports: list[TickReport] = []
    prepared.service.on_tick = reports.append
    asyncio.run(prepared.service.run(after_ms=prepared.after_ms))
    served = prepared.service.engine.release
    assert served is not None
    return Run(config, source, library, served, window, reports, symbols)


@pytest.fixture(scope="module")
def one_coin(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("parity"), 1, "one")


@pytest.fixture(scope="module")
def three_coins(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("parity"), 3, "three")


def _reference(run: Run, symbol: str):  # type: ignore[no-untyped-def]
    config = run.config
    bar = timedelta(hours=1)
    start = run.window.start - config.hamilton.history_bars * bar
    frame = coin_frame(run.source, config, symbol, start=start, end=run.window.end)
    models = run.served.coin(symbol.split("/", maxsplit=1)[0])
    signals = pl.DataFrame({c: frame.rule_signals[:, j] for j, c in enumerate(SIGNAL_COLUMNS)})
    ml_frame = frame.bars.hstack(signals).with_columns(pl.Series(REGIME_COLUMN, frame.regimes))
    assert models.predictor is not None
    forecast = models.predictor(ml_frame)
    signal, confidence = ml_vote(forecast, config.consensus.ml_scale_bps)
    votes = engine_votes(frame, signal, confidence, run.served.gates)
    params = ConsensusParams.from_config(config.consensus)
    horizon = config.training.model.label_horizon_bars
    reliability = causal_reliability(frame, votes, params, horizon)
    start_ms = int(run.window.start.timestamp() * 1000)
    rows = np.flatnonzero(frame.timestamps_ms >= start_ms)
    inputs, result = decision_inputs(
        frame,
        votes,
        reliability,
        rows,
        models.tables,
        params=params,
        cost_params=CostParams.from_config(config.cost_model),
        horizon_bars=horizon,
        ml_forecast_bps=forecast,
    )
    return inputs, result


def _events(run: Run, symbol: str) -> list[DecisionEvent]:
    return [e for r in run.reports for e in r.events if e.symbol == symbol]


def test_single_coin_replay_decides_exactly_like_the_backtest(one_coin: Run) -> None:
    symbol = one_coin.symbols[0]
    inputs, _ = _reference(one_coin, symbol)
    result = run_backtest(
        inputs, BacktestConfig.from_engine_config(one_coin.config, timeframe="1h")
    )
    decisions = [r.decisions[symbol] for r in one_coin.reports]
    assert len(decisions) == inputs.n_bars == REPLAY_DAYS * 24
    np.testing.assert_allclose([d.signed_qty for d in decisions], result.order_qty, rtol=1e-9)
    assert [d.reasons[0] for d in decisions] == [
        REASON_BY_CODE[c].value for c in result.reason_code
    ]
    np.testing.assert_allclose(
        [d.expected_edge_bps for d in decisions], result.expected_edge_bps, rtol=1e-9, atol=1e-9
    )
    assert result.metrics.n_orders >= 3  # the period trades: the comparison is not all holds


def test_every_coin_gets_the_history_computed_consensus(three_coins: Run) -> None:
    for symbol in three_coins.symbols:
        inputs, result = _reference(three_coins, symbol)
        events = _events(three_coins, symbol)
        assert len(events) == inputs.n_bars
        np.testing.assert_allclose([e.consensus_score for e in events], result.score, atol=1e-9)
        assert [e.regime for e in events] == [REGIMES[c].value for c in inputs.regime]
        forecast = [e.metadata.get("ml_forecast_bps", 0.0) for e in events]
        np.testing.assert_allclose(
            np.where(np.isfinite(forecast), forecast, 0.0),
            inputs.expected_return_bps,
            rtol=1e-6,
            atol=1e-6,
        )


def test_one_complete_consistent_event_per_coin_per_bar(three_coins: Run) -> None:
    stored = three_coins.library.query_decision_events()
    assert len(stored) == len(three_coins.symbols) * REPLAY_DAYS * 24
    seen = {(e["symbol"], e["timestamp"]) for e in stored}
    assert len(seen) == len(stored)
    for row in stored:
        event = DecisionEvent.from_dict(row)
        assert event.net_edge_bps == pytest.approx(event.expected_edge_bps - event.costs_bps)
        assert len(event.engine_votes) == 23
        assert event.release_id == three_coins.served.id
        assert event.reasons
        assert event.risk_preset == "aggressive"
        if event.action != "hold":
            assert event.reasons[0] in ORDER_REASONS
            assert event.qty > 0.0
        else:
            assert event.qty == 0.0


def test_no_order_where_a_check_failed(three_coins: Run) -> None:
    for report in three_coins.reports:
        for decision in report.decisions.values():
            if decision.denial is not None or decision.reasons[0] in (
                "edge_below_cost",
                "data_invalid",
            ):
                assert decision.qty == 0.0
                assert decision.action.value == "hold"
        ordered = {o.client_order_id for o in report.orders}
        assert len(ordered) == len(report.orders)
