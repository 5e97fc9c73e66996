"""A real Prometheus scrapes a running Hamilton replay; every Grafana panel expression of the
dashboards in docker/grafana/dashboards parses and returns data, and every series the alert
rules read exists with the labels they use."""

import asyncio
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, ReplayWindow
from tests.integration.hamilton_fixtures import (
    full_history_symbols,
    hamilton_config,
    make_release,
    market,
)
from tests.integration.prometheus_harness import (
    REPO_ROOT,
    dashboard_exprs,
    free_port,
    require_prometheus_tools,
    running_prometheus,
)
from trading_core.brain import BrainLibrary
from trading_core.brain.pipeline_runs import PipelineRun

DASHBOARDS = sorted((REPO_ROOT / "docker" / "grafana" / "dashboards").glob("*.json"))
ALERT_SERIES = (
    'hamilton_risk_state{state="HALTED"}',
    "hamilton_data_staleness_seconds",
    "hamilton_release_age_seconds",
    "hamilton_release_refused_total",
    "engine_error_rate_total",
    'engine_daily_run_last_status{dagster_job="daily_training"}',
    "engine_release_last_success_timestamp_seconds",
)
# Live-trading panels that show only non-zero series (open positions, open orders, drift): a
# paper replay can be flat with no order open at the moment of the query, and never reconciles.
# Their series must still exist unfiltered (drift excepted: it is set by reconciles only).
# tests/integration/test_grafana_dashboards.py checks them on Hamilton's metrics in a live state.
NONZERO_FILTERS = (" != 0", " > 0")
RECONCILE_ONLY = ("hamilton_reconcile_drift",)
ACTIVE_TRADING = {
    "consensus": {"adaptive_thresholds": {"TREND": 0.15, "RANGE": 0.15, "PANIC": 0.2}},
    "cost_model": {"min_edge_after_cost_bps": -30.0},
    "risk": {"preset": "aggressive"},
}


@pytest.mark.slow
def test_every_dashboard_expression_returns_data_from_a_live_replay(tmp_path: Path) -> None:
    require_prometheus_tools()
    config = hamilton_config(tmp_path, **ACTIVE_TRADING)
    source = market(config)
    symbols = tuple(full_history_symbols(source)[:3])
    library = BrainLibrary.from_config(config)
    library.migrate()
    make_release(library, config, source, symbols, train_end=source.end - timedelta(days=4))
    record_daily_runs(library, source.end)
    port = free_port()
    window = ReplayWindow(source.end - timedelta(days=4), source.end, speed=3600.0 * 4)
    settings = HamiltonSettings.from_config(
        config, symbols=symbols, replay=window, metrics_port=port, health_port=None
    )
    service = build_service(config, settings, library=library, source=source).service
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(summary=asyncio.run(service.run())))
    (tmp_path / "prom").mkdir()
    with running_prometheus([f"127.0.0.1:{port}"], tmp_path / "prom") as prom:
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while not service.engine.ledger.engine_pnl_usd and time.monotonic() < deadline:
                time.sleep(0.2)
            assert service.engine.ledger.engine_pnl_usd, "no trade closed: no PnL to attribute"
            prom.wait_for_series("engine_pnl_usd")
            time.sleep(3.5)  # a few more scrapes so every rate() has two samples
            missing = []
            for dashboard, panel, expr in dashboard_exprs(DASHBOARDS):
                base = _unfiltered(expr)
                if base.startswith(RECONCILE_ONLY) or prom.query(expr)["result"]:
                    continue
                if base == expr or not prom.query(base)["result"]:
                    missing.append(f"{dashboard} / {panel}: {expr}")
            for series in ALERT_SERIES:
                if not prom.query(series)["result"]:
                    missing.append(f"alert series {series}")
            assert not missing, "no data for:\n" + "\n".join(missing)
        finally:
            service.request_stop("test")
            thread.join(timeout=60)
    assert result["summary"].ticks > 0


def record_daily_runs(library: BrainLibrary, end: datetime) -> None:
    """The run table rows Dagster's sensors would have written for the release's day (the
    replay has no Dagster): the training panel's and the pipeline alerts' series exist."""
    for job, outcome in (("daily_training", None), ("release_push", "pushed")):
        library.record_pipeline_run(
            PipelineRun(
                run_id=f"replay-{job}",
                job_name=job,
                partition=str((end - timedelta(days=5)).date()),
                status="success",
                started_at=end - timedelta(days=4, minutes=30),
                ended_at=end - timedelta(days=4),
                release_outcome=outcome,
            )
        )


def _unfiltered(expr: str) -> str:
    """``expr`` without a trailing non-zero filter (``x != 0`` -> ``x``)."""
    for suffix in NONZERO_FILTERS:
        if expr.endswith(suffix):
            return expr.removesuffix(suffix)
    return expr
