"""The Hamilton service over a replay: release hot reload, a corrupted release refused, restart
mid-day resuming exactly, health and readiness endpoints."""

import asyncio
import json
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hamilton_exec.runtime.service import RunSummary
from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, ReplayWindow
from hamilton_exec.tick.hamilton_engine import TickReport
from tests.integration.hamilton_fixtures import (
    corrupt_artifact,
    full_history_symbols,
    hamilton_config,
    make_release,
    market,
    train_models,
)
from trading_core.brain import BrainLibrary
from trading_core.config.models import EngineConfig
from trading_core.market.synthetic import SyntheticMarket
from trading_core.types import Stage

N_SYMBOLS = 2
REPLAY_DAYS = 2


def _setup(
    tmp: Path, **extra: Any
) -> tuple[EngineConfig, SyntheticMarket, BrainLibrary, tuple[str, ...]]:
    config = hamilton_config(tmp, **extra)
    source = market(config)
    symbols = tuple(full_history_symbols(source)[:N_SYMBOLS])
    library = BrainLibrary.from_config(config)
    library.migrate()
    make_release(
        library, config, source, symbols, train_end=source.end - timedelta(days=REPLAY_DAYS)
    )
    return config, source, library, symbols


def _settings(
    config: EngineConfig, source: SyntheticMarket, symbols: tuple[str, ...], **kw: Any
) -> HamiltonSettings:
    window = ReplayWindow(
        source.end - timedelta(days=REPLAY_DAYS), source.end, kw.pop("speed", 0.0)
    )
    return HamiltonSettings.from_config(
        config, symbols=symbols, replay=window, metrics_port=None, health_port=None, **kw
    )


def _run(
    config: EngineConfig,
    settings: HamiltonSettings,
    library: BrainLibrary,
    source: SyntheticMarket,
    on_tick: Any = None,
) -> tuple[RunSummary, Any]:
    prepared = build_service(config, settings, library=library, source=source)
    if on_tick is not None:
        prepared.service.on_tick = on_tick
    summary = asyncio.run(prepared.service.run(after_ms=prepared.after_ms))
    return summary, prepared.service


def test_new_release_served_mid_run_and_corrupted_one_refused(tmp_path: Path) -> None:
    config, source, library, symbols = _setup(tmp_path)
    first = library.latest_release()
    assert first is not None
    train_end = source.end - timedelta(days=REPLAY_DAYS)
    made: dict[str, int] = {}

    def on_tick(report: TickReport) -> None:
        if len(made) == 0 and report.open_ms >= _ms(source, 6):
            made["good"] = make_release(
                library, config, source, symbols, train_end=train_end, tag="second", seed=7
            ).id
        elif len(made) == 1 and report.open_ms >= _ms(source, 20):
            models = train_models(
                library, config, source, symbols, train_end=train_end, tag="bad", seed=9
            )
            corrupt_artifact(library, models[0])
            made["bad"] = library.create_release(
                train_end.date() + timedelta(days=1),
                production=[m.name for m in models],
                created_by="tests",
            ).id

    settings = _settings(config, source, symbols, speed=36_000.0)  # 0.1 s per 1h bar
    summary, service = _run(config, settings, library, source, on_tick)
    assert summary.releases == [made["good"]]
    events = library.query_decision_events()
    served = [e["release_id"] for e in sorted(events, key=lambda e: e["timestamp"])]
    assert served[0] == first.id and served[-1] == made["good"]
    switch = served.index(made["good"])
    assert set(served[:switch]) == {first.id} and set(served[switch:]) == {made["good"]}
    second_names = {m.name for m in library.release_models(made["good"])}
    assert {e["metadata"]["model_version"] for e in events if e["release_id"] == made["good"]} <= (
        second_names | {None}
    )
    refused = service.engine.metrics.release_refused.labels("checksum_mismatch")._value.get()
    assert refused == 1
    assert service.sensor.refused == {made["bad"]: "checksum_mismatch"}
    assert service.engine.release.id == made["good"]
    # training gauges re-exported when the good release loaded (the bad one's models came later)
    jobs = service.engine.metrics.training_jobs
    exported = sum(jobs.labels(stage.value)._value.get() for stage in Stage)
    assert exported == len(library.release_models(first.id)) + len(second_names)


def _ms(source: SyntheticMarket, bars_into_replay: int) -> int:
    start = source.end - timedelta(days=REPLAY_DAYS) + timedelta(hours=bars_into_replay)
    return int(start.timestamp() * 1000)


def test_restart_mid_day_resumes_with_the_same_decisions_and_risk_state(tmp_path: Path) -> None:
    active = {
        "consensus": {"adaptive_thresholds": {"TREND": 0.15, "RANGE": 0.15, "PANIC": 0.2}},
        "cost_model": {"min_edge_after_cost_bps": -30.0},
    }
    config_a, source, library_a, symbols = _setup(tmp_path / "a", **active)
    _run(config_a, _settings(config_a, source, symbols), library_a, source)
    config_b, _, library_b, _ = _setup(tmp_path / "b", **active)
    stopped, first = _run(
        config_b, _settings(config_b, source, symbols, max_bars=13), library_b, source
    )
    assert stopped.stopped_by == "max_bars" and stopped.ticks == 13
    saved = json.loads((config_b_state(config_b) / "hamilton_state.json").read_text())
    resumed, second = _run(config_b, _settings(config_b, source, symbols), library_b, source)
    assert resumed.ticks == REPLAY_DAYS * 24 - 13
    assert saved["risk_state"]["day"] == first.engine.state.day.isoformat()
    key = ("symbol", "timestamp", "action", "expected_edge_bps")
    rows_a = sorted(tuple(e[k] for k in key) for e in library_a.query_decision_events())
    rows_b = sorted(tuple(e[k] for k in key) for e in library_b.query_decision_events())
    assert rows_a == rows_b
    assert sum(1 for r in rows_a if r[2] != "hold") >= 2
    final_a = json.loads((config_b_state(config_a) / "hamilton_state.json").read_text())
    assert final_a["risk_state"] == second.engine.state.to_dict()


def config_b_state(config: EngineConfig) -> Path:
    return Path(config.hamilton.state_path)


def test_health_and_readiness_endpoints(tmp_path: Path) -> None:
    config, source, library, symbols = _setup(tmp_path)
    settings = _settings(config, source, symbols, speed=18_000.0)
    settings = type(settings)(**{**settings.__dict__, "health_port": 0, "metrics_port": 0})
    prepared = build_service(config, settings, library=library, source=source)
    service = prepared.service
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(s=asyncio.run(service.run())))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while service.health_port is None and time.monotonic() < deadline:
            time.sleep(0.02)
        base = f"http://127.0.0.1:{service.health_port}"
        assert _get(f"{base}/healthz")[0] == 200
        while service.summary.ticks < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        status, body = _get(f"{base}/readyz")
        assert status == 200 and body["ready"] and body["release_id"] == library.latest_release().id
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics").read()
        assert b"hamilton_decisions_total" in metrics
    finally:
        service.request_stop("test")
        thread.join(timeout=30)
    assert result["s"].stopped_by == "test"


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("ticks", [1])
def test_readiness_reports_warming_up_before_the_first_tick(tmp_path: Path, ticks: int) -> None:
    config, source, library, symbols = _setup(tmp_path)
    prepared = build_service(
        config, _settings(config, source, symbols), library=library, source=source
    )
    assert prepared.service.ready_reason == "warming up"
