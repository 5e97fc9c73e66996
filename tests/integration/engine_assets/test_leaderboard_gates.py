"""Weekly leaderboard -> gates -> Hamilton: the engine_leaderboard asset (real Dagster) ranks the
engines from the bars and from the DecisionEvents a Hamilton replay logged, writes next week's
gates with an audit entry, the push puts them in the release, and Hamilton's release sensor
serves them."""

import asyncio
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from engine_assets.definitions import build_resources, defs
from hamilton_exec.runtime.release_sensor import ReleaseSensor
from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, ReplayWindow
from tests.integration.dagster_fixtures import engine_env
from tests.integration.hamilton_fixtures import full_history_symbols, market, train_models
from trading_core.brain import BrainLibrary
from trading_core.config import EngineConfig, load_config
from trading_core.market.fetch import fetch_to_store
from trading_core.market.parquet_store import ParquetStore
from trading_core.training.orchestrate import push_release

WEEK = "2026-10-25"  # weekly partitions start on Sundays; the replayed days are in its window
NEXT_MONDAY = date(2026, 11, 2)
SMALL = {
    "ENGINE__ENGINE__ACTIVE_COINS": "4",
    "ENGINE__ENGINE__TIMEFRAMES": '["1h"]',
    "ENGINE__DATA__SYNTHETIC__N_COINS": "8",
    "ENGINE__DATA__SYNTHETIC__DAYS": "75",
    "ENGINE__TRAINING__MODEL__N_ESTIMATORS": "15",
    "ENGINE__TRAINING__MODEL__MAX_DEPTH": "3",
    "ENGINE__TRAINING__MODEL__MIN_REGIME_BARS": "150",
    "ENGINE__OBSERVABILITY__PROMETHEUS__PORT": "0",
    "ENGINE__REGIME_GATES__AUTO_GATING": "true",
    "ENGINE__REGIME_GATES__AUTO_GATING_MIN_VOTES": "5",
}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineConfig]:
    for key, value in {**engine_env(tmp_path), **SMALL}.items():
        monkeypatch.setenv(key, value)
    yield load_config()


def test_leaderboard_gates_reach_hamilton_through_the_next_release(
    config: EngineConfig, tmp_path: Path
) -> None:
    source = market(config)
    symbols = tuple(full_history_symbols(source)[:2])
    library = BrainLibrary.from_config(config)
    library.migrate()
    start = source.end - timedelta(days=2)
    models = train_models(library, config, source, symbols, train_end=start)
    library.create_release(start.date(), production=[m.name for m in models], created_by="t")
    settings = HamiltonSettings.from_config(
        config,
        symbols=symbols,
        replay=ReplayWindow(start, source.end, 0.0),
        metrics_port=None,
        health_port=0,
    )
    prepared = build_service(config, settings, library=library, source=source)
    asyncio.run(prepared.service.run(after_ms=prepared.after_ms))
    logged = library.query_decision_events(shadow=False)
    assert len(logged) == 2 * 24 * len(symbols)
    store = ParquetStore(Path(config.data.store_path))
    fetch_to_store(
        source,
        store,
        [*symbols, "BTC/USDT"],
        "1h",
        since=source.end - timedelta(days=75),
        until=source.end,
    )

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [defs.get_assets_def("engine_leaderboard")],
            partition_key=WEEK,
            resources=build_resources(dask_processes=False),
            instance=instance,
        )
    assert result.success
    meta = result.asset_materializations_for_node("engine_leaderboard")[0].metadata
    assert meta["logged_decisions"].value == len(logged)
    assert meta["gates_updated"].value is True
    assert "decision_events" in str(meta["top_engines"].value)  # ranks from logged votes

    overrides = library.current_regime_gates(as_of=NEXT_MONDAY)
    assert set(overrides) == {"TREND", "RANGE", "PANIC", "ILLIQUID"}
    audit = overrides["RANGE"]
    assert audit.actor == "engine-leaderboard" and "logged decisions" in audit.reason
    assert audit.week_start == NEXT_MONDAY and isinstance(audit.created_at, datetime)
    outcome = push_release(library, NEXT_MONDAY, note="daily push after the leaderboard")
    release = outcome.release
    assert outcome.status == "pushed" and release is not None and release.gates is not None
    assert release.gates["RANGE"]["enabled_engines"] == list(audit.enabled_engines)

    engine = prepared.service.engine
    assert ReleaseSensor(library, engine).poll().release_id == release.id
    expected = engine.base_gates.with_overrides(dict(release.gates))
    for regime in ("TREND", "RANGE", "PANIC", "ILLIQUID"):
        assert engine.gates().gate(regime) == expected.gate(regime)
    assert engine.gates().gate("RANGE").enabled_engines == audit.enabled_engines
