"""docker/grafana: dashboards are well-formed Grafana JSON, lay out without overlap, use the
provisioned Prometheus datasource by uid, and every PromQL expression parses (promtool).

Whether each expression finds data is checked against a real Prometheus by the harness tests
(stand-in exporter) and by the product test (real Hamilton replay)."""

import json
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.prometheus_harness import dashboard_exprs, require_prometheus_tools

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
