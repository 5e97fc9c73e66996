"""docker/grafana: dashboards are well-formed Grafana JSON, lay out without overlap, use the
provisioned Prometheus datasource by uid, and every PromQL expression parses (promtool).

Whether each expression finds data is checked against a real Prometheus by the harness tests
(stand-in exporter) and by the product test (real Hamilton replay). The "Live trading" row reads
series a paper replay never sets (reconciles, drift, refusals): its expressions are checked here
against a real Prometheus scraping Hamilton's own metrics object in a live-trading state."""

import json
import math
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import start_http_server

from hamilton_exec.runtime.release_sensor import export_pipeline_metrics
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from tests.integration.prometheus_harness import (
    PrometheusServer,
    dashboard_exprs,
    free_port,
    require_prometheus_tools,
    running_prometheus,
)
from tests.integration.test_prometheus_rules import live_hamilton_prometheus
from trading_core.brain import BrainLibrary
from trading_core.brain.pipeline_runs import PipelineRun
from trading_core.config.models import ExchangeSection

GRAFANA_DIR = Path(__file__).resolve().parents[2] / "docker" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER = GRAFANA_DIR / "provisioning" / "dashboards" / "provider.yml"
GRID_COLUMNS = 24
# Panel plugins built into Grafana (public/app/plugins/panel in grafana/grafana); a dashboard
# using any other type needs a plugin installed, which this stack does not do.
BUILTIN_PANEL_TYPES = frozenset(
    {
        "alertlist", "annolist", "barchart", "bargauge", "candlestick", "canvas", "dashlist",
        "datagrid", "flamegraph", "gauge", "geomap", "heatmap", "histogram", "logs", "news",
        "nodeGraph", "piechart", "row", "stat", "state-timeline", "status-history", "table",
        "text", "timeseries", "traces", "trend", "xychart",
    }
)  # fmt: skip
# The seed's six panels and the extra two the brief asks for: title -> panel type.
REQUIRED_PANELS = {
    "PnL by engine": "timeseries",
    "Latency percentiles": "timeseries",
    "Error rate by component": "barchart",
    "Consensus confidence distribution": "heatmap",
    "Cost breakdown by venue": "piechart",
    "Training job status": "table",
    "Model release age": "stat",
    "Data staleness by symbol": "timeseries",
}

HAMILTON_DASHBOARD = GRAFANA_DIR / "dashboards" / "hamilton-execution.json"
LIVE_ROW = "Live trading"
# issue 12: title -> panel type of the row's panels
LIVE_PANELS = {
    "Kill switch and risk state": "stat",
    "Events spool depth": "stat",
    "Position notional by symbol": "timeseries",
    "Open orders by symbol": "timeseries",
    "Exchange clock offset": "timeseries",
    "Order reports by status and reason": "timeseries",
    "Reconcile drift by symbol": "timeseries",
    "Reconciles by result (last hour)": "timeseries",
    "Realized minus expected cost": "timeseries",
    "Open positions": "table",
}


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _datasource_uid() -> str:
    datasources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    uid: str = next(ds["uid"] for ds in datasources if ds["type"] == "prometheus")
    return uid


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_dashboards_exist() -> None:
    assert [path.name for path in DASHBOARDS] == ["engine-overview.json", "hamilton-execution.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_has_required_grafana_fields(path: Path) -> None:
    dashboard = _load(path)
    assert isinstance(dashboard["uid"], str) and 0 < len(dashboard["uid"]) <= 40
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}: {ids}"


def test_dashboard_uids_unique() -> None:
    uids = [_load(path)["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_panels_well_formed(path: Path) -> None:
    uid = _datasource_uid()
    for panel in _panels(_load(path)):
        where = f"{path.name} / {panel.get('title')}"
        assert panel["type"] in BUILTIN_PANEL_TYPES, where
        assert isinstance(panel["id"], int) and panel["title"], where
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) and grid[key] >= 0 for key in "xywh"), where
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= GRID_COLUMNS, where
        assert panel["targets"], where
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, where
        for target in panel["targets"]:
            assert target["expr"].strip(), where
            assert target["datasource"] == {"type": "prometheus", "uid": uid}, where
            assert target["refId"], where
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), where


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_panels_do_not_overlap(path: Path) -> None:
    panels = _panels(_load(path))
    clashes = [
        (a["title"], b["title"])
        for a, b in combinations(panels, 2)
        if _overlaps(a["gridPos"], b["gridPos"])
    ]
    assert clashes == []


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 12, 8), (12, 0, 12, 8), False),  # side by side
        ((0, 0, 12, 8), (0, 8, 12, 8), False),  # stacked
        ((0, 0, 12, 8), (11, 7, 4, 4), True),  # corner overlap
        ((0, 0, 24, 8), (6, 2, 6, 2), True),  # contained
    ],
)
def test_overlap_known_layouts(
    a: tuple[int, int, int, int], b: tuple[int, int, int, int], expected: bool
) -> None:
    def grid(box: tuple[int, int, int, int]) -> dict[str, int]:
        return dict(zip("xywh", box, strict=True))

    assert _overlaps(grid(a), grid(b)) is expected
    assert _overlaps(grid(b), grid(a)) is expected


def test_seed_panels_present_with_their_types() -> None:
    found = {panel["title"]: panel["type"] for path in DASHBOARDS for panel in _panels(_load(path))}
    assert {title: found.get(title) for title in REQUIRED_PANELS} == REQUIRED_PANELS


def test_latency_and_confidence_panels_read_histograms() -> None:
    exprs = {(panel, expr) for _, panel, expr in dashboard_exprs(DASHBOARDS)}
    latency = sorted(expr for panel, expr in exprs if panel == "Latency percentiles")
    assert [expr.split(",")[0] for expr in latency] == [
        "histogram_quantile(0.50",
        "histogram_quantile(0.90",
        "histogram_quantile(0.99",
    ]
    assert all("engine_latency_ms_bucket" in expr for expr in latency)
    confidence = [expr for panel, expr in exprs if panel == "Consensus confidence distribution"]
    assert len(confidence) == 1 and "consensus_confidence_bucket" in confidence[0]


def test_every_dashboard_expr_parses_with_promtool(tmp_path: Path) -> None:
    """Each expression becomes a recording rule; promtool's rule check runs the real parser."""
    tools = require_prometheus_tools()
    exprs = dashboard_exprs(DASHBOARDS)
    rules = [
        {"record": f"dashboard_expr_{i}", "expr": expr} for i, (_, _, expr) in enumerate(exprs)
    ]
    rule_file = tmp_path / "dashboard_exprs.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [str(tools.promtool), "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    numbered = "\n".join(f"{i}: {d} / {p}: {e}" for i, (d, p, e) in enumerate(exprs))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{numbered}"
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promtool_parse_check_rejects_bad_expr(tmp_path: Path) -> None:
    tools = require_prometheus_tools()
    rule_file = tmp_path / "bad.yml"
    bad = {
        "record": "dashboard_expr_0",
        "expr": "histogram_quantile(0.9, sum by (le) (rate(x[1m]))",
    }
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [bad]}]}))
    result = subprocess.run(
        [str(tools.promtool), "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0


def test_datasource_provisioning_points_at_compose_prometheus() -> None:
    provisioned = yaml.safe_load(DATASOURCES.read_text())
    assert provisioned["apiVersion"] == 1
    (datasource,) = provisioned["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["isDefault"] is True


def test_dashboard_provider_reads_a_file_folder() -> None:
    provider = yaml.safe_load(PROVIDER.read_text())
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert entry["type"] == "file"
    assert entry["options"]["path"].startswith("/")


def _row_panels(dashboard: dict[str, Any], title: str) -> list[dict[str, Any]]:
    """The panels of row ``title``: inside it when collapsed, else those below it and above the
    next row."""
    panels = dashboard["panels"]
    (row,) = [p for p in panels if p["type"] == "row" and p["title"] == title]
    if row.get("collapsed"):
        inner: list[dict[str, Any]] = row["panels"]
        return inner
    top = row["gridPos"]["y"]
    end = min(
        (p["gridPos"]["y"] for p in panels if p["type"] == "row" and p["gridPos"]["y"] > top),
        default=math.inf,
    )
    return [p for p in panels if p["type"] != "row" and top < p["gridPos"]["y"] < end]


def _live_exprs() -> list[tuple[str, str]]:
    title = _load(HAMILTON_DASHBOARD)["title"]
    return [
        (panel, expr)
        for dashboard, panel, expr in dashboard_exprs([HAMILTON_DASHBOARD])
        if dashboard == title and panel in LIVE_PANELS
    ]


def _values(prom: PrometheusServer, expr: str, label: str) -> dict[str, float]:
    return {
        sample["metric"].get(label, ""): float(sample["value"][1])
        for sample in prom.query(expr)["result"]
    }


def test_live_trading_row_has_its_panels() -> None:
    panels = _row_panels(_load(HAMILTON_DASHBOARD), LIVE_ROW)
    assert {panel["title"]: panel["type"] for panel in panels} == LIVE_PANELS


def test_live_trading_clock_panel_marks_the_skew_bound() -> None:
    """The red lines sit where the live broker starts refusing orders."""
    bound = ExchangeSection().max_clock_skew_ms
    (panel,) = [
        p for p in _row_panels(_load(HAMILTON_DASHBOARD), LIVE_ROW)
        if p["title"] == "Exchange clock offset"
    ]  # fmt: skip
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [step["value"] for step in steps] == [None, -bound, bound]


@pytest.fixture(scope="module")
def live_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with live_hamilton_prometheus(tmp_path_factory.mktemp("prometheus")) as prom:
        yield prom


def test_live_trading_exprs_find_real_hamilton_metrics(live_prometheus: PrometheusServer) -> None:
    """Every expression of the row runs on a real Prometheus and finds the series that
    hamilton_exec.telemetry.hamilton_metrics exports (names, labels, the _total and _bucket
    suffixes)."""
    exprs = _live_exprs()
    assert {panel for panel, _ in exprs} == set(LIVE_PANELS)
    empty = [(panel, expr) for panel, expr in exprs if not live_prometheus.query(expr)["result"]]
    assert empty == []


def test_live_trading_panels_show_the_state(live_prometheus: PrometheusServer) -> None:
    by_panel: dict[str, list[str]] = {}
    for panel, expr in _live_exprs():
        by_panel.setdefault(panel, []).append(expr)
    exprs = {panel: targets[0] for panel, targets in by_panel.items()}
    kill_switch, risk_state = by_panel["Kill switch and risk state"]
    assert _values(live_prometheus, kill_switch, "") == {"": 1.0}
    assert _values(live_prometheus, risk_state, "") == {"": 2.0}  # HALTED
    positions = _values(live_prometheus, by_panel["Position notional by symbol"][0], "symbol")
    assert positions == {"BTCUSDT": 650.0, "ETHUSDT": -1700.0}  # SOLUSDT is flat
    total, per_symbol = by_panel["Open orders by symbol"]
    assert _values(live_prometheus, total, "") == {"": 2.0}
    assert _values(live_prometheus, per_symbol, "symbol") == {"BTCUSDT": 1.0, "ETHUSDT": 1.0}
    drift = _values(live_prometheus, exprs["Reconcile drift by symbol"], "symbol")
    assert drift == {"ETHUSDT": 0.1, "cash": -12.5}
    assert _values(live_prometheus, exprs["Exchange clock offset"], "") == {"": -1500.0}
    assert _values(live_prometheus, exprs["Events spool depth"], "") == {"": 4.0}
    reconciles = _values(live_prometheus, exprs["Reconciles by result (last hour)"], "result")
    assert set(reconciles) == {"applied", "drift", "deferred", "failed"}
    assert reconciles["drift"] > 0 and reconciles["failed"] > 0
    for expr in by_panel["Realized minus expected cost"]:
        (quantile,) = _values(live_prometheus, expr, "venue").values()
        assert -8.0 <= quantile <= 8.0, expr


# --- issue 13: the daily runs in the "Training job status" panel ---------------------------------

TRAINING_STATUS_PANEL = "Training job status"


def _panel_exprs(title: str) -> dict[str, str]:
    """refId -> expression of the overview dashboard's panel ``title``."""
    (panel,) = [p for p in _panels(_load(DASHBOARDS[0])) if p["title"] == title]
    return {target["refId"]: target["expr"] for target in panel["targets"]}


def test_training_status_panel_reads_the_daily_run_metrics() -> None:
    exprs = _panel_exprs(TRAINING_STATUS_PANEL)
    assert exprs["A"] == "sum by (status) (training_jobs_total)"
    daily = " ".join(expr for ref, expr in exprs.items() if ref != "A")
    for name in (
        "engine_daily_run_last_status",
        "engine_daily_run_last_duration_seconds",
        'engine_daily_runs_total{status="success"}',
        'engine_daily_runs_total{status="failure"}',
    ):
        assert name in daily, name


def test_training_status_panel_shows_a_failed_day_from_the_run_table(tmp_path: Path) -> None:
    """A real Brain Library run table (one good day, then a failed one), exported through
    Hamilton's metrics object and scraped by a real Prometheus: the panel's expressions return
    the failed newest run, its duration and the counts."""
    require_prometheus_tools()
    library = BrainLibrary(f"sqlite:///{tmp_path / 'brain.db'}", tmp_path / "artifacts")
    library.migrate()
    start = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    rows = [
        ("t1", "daily_training", "success", start, 1500, None),
        ("p1", "release_push", "success", start + timedelta(minutes=30), 12, "pushed"),
        ("t2", "daily_training", "failure", start + timedelta(days=1), 420, None),
    ]
    for run_id, job, status, began, seconds, outcome in rows:
        library.record_pipeline_run(
            PipelineRun(run_id, job, "2026-10-31", status, began + timedelta(seconds=seconds),
                        began, release_outcome=outcome)
        )  # fmt: skip
    metrics = HamiltonMetrics(venue="binance")
    export_pipeline_metrics(library, metrics)
    library.close()
    exprs = _panel_exprs(TRAINING_STATUS_PANEL)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    (tmp_path / "prom").mkdir()
    try:
        with running_prometheus([f"127.0.0.1:{port}"], tmp_path / "prom") as prom:
            prom.wait_for_series("engine_daily_run_last_status")
            last = _values(prom, exprs["B"], "dagster_job")
            duration = _values(prom, exprs["C"], "dagster_job")
            succeeded = _values(prom, exprs["D"], "dagster_job")
            failed = _values(prom, exprs["E"], "dagster_job")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert last == {"daily_training": 0.0, "release_push": 1.0}
    assert duration == {"daily_training": 420.0, "release_push": 12.0}
    assert succeeded == {"daily_training": 1.0, "release_push": 1.0}
    assert failed == {"daily_training": 1.0, "release_push": 0.0}
