"""Hamilton's shadow trading over a replay with real models: challengers trade virtual books
beside a mirror of their champion, never the real book; their decisions are stored as shadow
events; per-day paired returns reach the Brain Library; a restart completes the open day."""

import asyncio
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, ReplayWindow
from hamilton_exec.tick.hamilton_engine import TickReport
from tests.integration.hamilton_fixtures import (
    full_history_symbols,
    hamilton_config,
    market,
    train_models,
)
from trading_core.brain import BrainLibrary, ModelVersion
from trading_core.config.models import EngineConfig
from trading_core.market.synthetic import SyntheticMarket

REPLAY_DAYS = 2


class Setup:
    def __init__(self, tmp: Path) -> None:
        self.config: EngineConfig = hamilton_config(tmp)
        self.source: SyntheticMarket = market(self.config)
        self.symbols = tuple(full_history_symbols(self.source)[:2])
        self.library = BrainLibrary.from_config(self.config)
        self.library.migrate()
        self.start = self.source.end - timedelta(days=REPLAY_DAYS)
        self.champions = train_models(
            self.library, self.config, self.source, self.symbols, train_end=self.start
        )
        self.challengers = train_models(
            self.library,
            self.config,
            self.source,
            self.symbols,
            train_end=self.start,
            tag="challenger",
            seed=7,
        )
        self.tmp = tmp

    def release(self, *, shadow: bool) -> None:
        self.library.create_release(
            self.start.date() + timedelta(days=int(shadow)),
            production=[m.name for m in self.champions],
            shadow=[m.name for m in self.challengers] if shadow else [],
            created_by="tests",
        )

    def run(self, state: str, *, max_bars: int | None = None) -> tuple[Any, list[TickReport]]:
        settings = HamiltonSettings.from_config(
            self.config,
            symbols=self.symbols,
            replay=ReplayWindow(self.start, self.source.end, 0.0),
            metrics_port=None,
            health_port=0,
            state_dir=self.tmp / state,
            max_bars=max_bars,
        )
        prepared = build_service(self.config, settings, library=self.library, source=self.source)
        reports: list[TickReport] = []
        prepared.service.on_tick = reports.append
        asyncio.run(prepared.service.run(after_ms=prepared.after_ms))
        return prepared.service, reports


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return Setup(tmp_path_factory.mktemp("hamilton_shadow"))


def _production(reports: list[TickReport]) -> list[tuple[str, str, str, float]]:
    return [(e.symbol, e.timestamp.isoformat(), e.action, e.qty) for r in reports for e in r.events]


def _series(library: BrainLibrary, model: ModelVersion) -> list[tuple[Any, ...]]:
    return [
        (r.period_start, r.challenger_returns, r.champion_returns, r.statistics["bars"])
        for r in library.shadow_results(model.key)
        if r.challenger == model.name
    ]


def test_challengers_shadow_trade_without_touching_the_real_book(setup: Setup) -> None:
    setup.release(shadow=False)
    plain, plain_reports = setup.run("plain")
    setup.release(shadow=True)
    shadowed, reports = setup.run("shadowed")
    engine = shadowed.engine
    # the real book decides, orders and ends exactly as without challengers
    assert _production(reports) == _production(plain_reports)
    assert engine.state == plain.engine.state
    assert shadowed.summary.orders == plain.summary.orders
    # each challenger decided every bar of its coin, as shadow events naming it
    names = {m.name: m for m in setup.challengers}
    champions = {m.key: m.name for m in setup.champions}
    shadow_events = [e for r in reports for e in r.shadow_events]
    assert len(shadow_events) == REPLAY_DAYS * 24 * len(names)
    for event in shadow_events:
        model = names[str(event.model_version)]
        assert event.metadata["shadow"] is True
        assert event.metadata["shadow_of"] == champions[model.key]
    stored = setup.library.query_decision_events(shadow=True)
    assert len(stored) == len(shadow_events)
    assert {e["metadata"]["model_version"] for e in stored} == set(names)
    assert all(not o["shadow"] for o in setup.library.trade_outcomes())
    # per UTC day, one period per challenger; compounding them gives each virtual book's equity
    capital = setup.config.risk.initial_capital_usd
    for name, pair in engine.shadow.pairs.items():
        series = _series(setup.library, names[name])
        assert [s[3] for s in series] == [24] * REPLAY_DAYS
        assert series[0][0] == setup.start
        book = math.prod(1 + r for s in series for r in s[1])
        mirror = math.prod(1 + r for s in series for r in s[2])
        assert book == pytest.approx(pair.book.state.equity_usd / capital, rel=1e-9)
        assert mirror == pytest.approx(pair.mirror.state.equity_usd / capital, rel=1e-9)


def test_restart_mid_day_completes_the_open_period_exactly(setup: Setup) -> None:
    setup.release(shadow=True)
    setup.run("straight")
    expected = {m.name: _series(setup.library, m) for m in setup.challengers}
    first, _ = setup.run("restarted", max_bars=30)  # stops at 06:00 on the second day
    assert first.summary.stopped_by == "max_bars"
    partial = _series(setup.library, setup.challengers[0])
    assert [s[3] for s in partial] == [24, 6]  # the open day was checkpointed at the stop
    second, _ = setup.run("restarted")
    assert second.summary.ticks == REPLAY_DAYS * 24 - 30
    assert {m.name: _series(setup.library, m) for m in setup.challengers} == expected
