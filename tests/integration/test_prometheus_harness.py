"""HARNESS tests, not product tests: they prove tests/integration/prometheus_harness.py works.

A tiny stand-in exporter (prometheus_client, the product's metric names from
trading_core.observability.metric_names, made-up values) is scraped by a real Prometheus.
The product test scrapes a real Hamilton replay with the same harness instead.
"""

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from hamilton_exec.telemetry.feed_metrics import FeedMetrics
from tests.integration.prometheus_harness import (
    PrometheusServer,
    PromQLError,
    dashboard_exprs,
    free_port,
    running_prometheus,
)
from trading_core.observability import metric_names as m

DASHBOARDS = sorted(
    (Path(__file__).resolve().parents[2] / "docker/grafana/dashboards").glob("*.json")
)


def _standin_registry() -> CollectorRegistry:
    """Every metric of metric_names.py with the labels its comment names, fixed values."""
    registry = CollectorRegistry()
    Gauge(m.ENGINE_PNL_USD, "pnl", ["engine", "symbol", "regime"], registry=registry).labels(
        "momentum", "BTCUSDT", "TREND"
    ).set(125.5)
    latency = Histogram(
        m.ENGINE_LATENCY_MS,
        "latency",
        ["engine", "operation"],
        registry=registry,
        buckets=(1, 5, 10, 50, 100, 500),
    )
    for value_ms in (0.5, 3.0, 7.0, 40.0, 90.0):
        latency.labels("momentum", "signal").observe(value_ms)
    Counter(m.ENGINE_ERROR_RATE, "errors", ["engine", "error_type"], registry=registry).labels(
        "momentum", "DataValidationError"
    ).inc(3)
    Histogram(
        m.CONSENSUS_CONFIDENCE,
        "confidence",
        ["regime"],
        registry=registry,
        buckets=(0.2, 0.4, 0.6, 0.8, 1.0),
    ).labels("TREND").observe(0.7)
    Gauge(
        m.COST_MODEL_SPREAD_BPS, "spread", ["venue", "symbol", "source"], registry=registry
    ).labels("binance", "BTCUSDT", "book").set(1.2)
    Gauge(
        m.TRAINING_JOB_DURATION_SECONDS, "duration", ["coin", "regime"], registry=registry
    ).labels("BTC", "TREND").set(42.0)
    Counter(m.DECISIONS_TOTAL, "decisions", ["action", "regime"], registry=registry).labels(
        "buy", "TREND"
    ).inc()
    Counter(m.ORDERS_TOTAL, "orders", ["side", "status"], registry=registry).labels(
        "buy", "filled"
    ).inc()
    Counter(m.RISK_DENIALS_TOTAL, "denials", ["reason"], registry=registry).labels(
        "min_confidence"
    ).inc()
    Gauge(m.RELEASE_INFO, "release", ["release_id"], registry=registry).labels("rel_20261124").set(
        1
    )
    Gauge(m.RELEASE_AGE_SECONDS, "release age", registry=registry).set(3600.0)
    Counter(m.RELEASE_REFUSED_TOTAL, "refused", ["reason"], registry=registry).labels(
        "checksum"
    ).inc()
    Gauge(m.DATA_STALENESS_SECONDS, "staleness", ["symbol"], registry=registry).labels(
        "BTCUSDT"
    ).set(30.0)
    Gauge(m.EQUITY_USD, "equity", registry=registry).set(10_000.0)
    risk_state = Gauge(m.RISK_STATE, "risk state", ["state"], registry=registry)
    for state, current in (("ACTIVE", 1), ("REDUCING", 0), ("HALTED", 0)):
        risk_state.labels(state).set(current)
    # live trading (issue 12)
    Gauge(m.KILL_SWITCH, "kill switch", registry=registry).set(0)
    Gauge(m.EVENTS_SPOOL_DEPTH, "spool", registry=registry).set(0)
    Gauge(m.EXCHANGE_CLOCK_OFFSET_MS, "clock offset", registry=registry).set(35.0)
    Gauge(m.POSITION_QTY, "qty", ["symbol"], registry=registry).labels("BTCUSDT").set(0.01)
    Gauge(m.POSITION_NOTIONAL_USD, "notional", ["symbol"], registry=registry).labels("BTCUSDT").set(
        650.0
    )
    Gauge(m.OPEN_ORDERS, "open orders", ["symbol"], registry=registry).labels("BTCUSDT").set(1)
    Gauge(m.RECONCILE_DRIFT, "drift", ["symbol"], registry=registry).labels("cash").set(-0.5)
    Counter(m.RECONCILE_TOTAL, "reconciles", ["result"], registry=registry).labels("applied").inc()
    Counter(m.ORDER_REPORTS_TOTAL, "reports", ["status", "reason"], registry=registry).labels(
        "filled", "none"
    ).inc()
    Histogram(
        m.REALIZED_COST_ERROR_BPS, "cost error", ["venue"], registry=registry, buckets=(-1, 0, 1)
    ).labels("binance").observe(0.5)
    Histogram(
        m.COST_BPS, "cost", ["venue", "component"], registry=registry, buckets=(1, 5, 10)
    ).labels("binance", "fee").observe(4.0)
    Gauge(m.TRAINING_JOBS_TOTAL, "jobs", ["status"], registry=registry).labels("succeeded").set(60)
    Gauge(m.TRAINING_GATE_VERDICTS, "gate", ["verdict"], registry=registry).labels("passed").set(4)
    # the daily pipeline's run table (issue 13)
    runs = Gauge(m.DAILY_RUNS_TOTAL, "runs", ["dagster_job", "status"], registry=registry)
    runs.labels("daily_training", "success").set(6)
    runs.labels("daily_training", "failure").set(1)
    Gauge(m.DAILY_RUN_LAST_STATUS, "last", ["dagster_job"], registry=registry).labels(
        "daily_training"
    ).set(1)
    Gauge(m.DAILY_RUN_LAST_DURATION_SECONDS, "duration", ["dagster_job"], registry=registry).labels(
        "daily_training"
    ).set(1800.0)
    Gauge(m.RELEASE_LAST_SUCCESS_TIMESTAMP_SECONDS, "pushed", registry=registry).set(1.7e9)
    feed = FeedMetrics(registry)  # the product's own market-data series
    feed.close_to_tick.observe(0.2)
    feed.reconnects.labels("ohlcv").inc()
    feed.gap_filled.inc(3)
    feed.stale.labels("book").inc()
    feed.spread_fallbacks.labels("book_stale").inc()
    return registry


@contextmanager
def _standin_exporter() -> Iterator[str]:
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=_standin_registry())
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def standin_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """One Prometheus for the module: its first scrape waits ~5 s for target discovery."""
    tmp_path = tmp_path_factory.mktemp("prometheus")
    with _standin_exporter() as target, running_prometheus([target], tmp_path) as prom:
        # rate() and increase() need two samples inside their window
        prom.wait_for_series('count_over_time(up{job="hamilton"}[1m]) >= 2', timeout_s=30)
        yield prom


def test_harness_scrapes_standin_exporter_values_match(
    standin_prometheus: PrometheusServer,
) -> None:
    equity = standin_prometheus.wait_for_series(m.EQUITY_USD, timeout_s=5)
    pnl = standin_prometheus.query(f'{m.ENGINE_PNL_USD}{{engine="momentum"}}')["result"]
    up = standin_prometheus.query('up{job="hamilton"}')["result"]
    assert float(equity[0]["value"][1]) == 10_000.0
    assert pnl[0]["metric"]["symbol"] == "BTCUSDT"
    assert float(pnl[0]["value"][1]) == 125.5
    assert [float(sample["value"][1]) for sample in up] == [1.0]


def test_harness_bad_promql_raises_with_expression(standin_prometheus: PrometheusServer) -> None:
    with pytest.raises(PromQLError, match=r"sum by \(engine"):
        standin_prometheus.query("sum by (engine (engine_pnl_usd)")


def test_harness_every_dashboard_expr_returns_standin_data(
    standin_prometheus: PrometheusServer,
) -> None:
    """Each dashboard expression runs on a real Prometheus and finds series: this catches a
    metric or label name that the product's metric_names.py does not define."""
    exprs = dashboard_exprs(DASHBOARDS)
    assert len(exprs) >= 20
    empty = [
        (dashboard, panel, expr)
        for dashboard, panel, expr in exprs
        if not standin_prometheus.query(expr)["result"]
    ]
    assert empty == []


def test_harness_stops_prometheus_port_closed(tmp_path: Path) -> None:
    with _standin_exporter() as target, running_prometheus([target], tmp_path) as prom:
        port = int(prom.base_url.rsplit(":", 1)[1])
        assert prom.query("vector(1)")["result"][0]["value"][1] == "1"
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_dashboard_exprs_substitutes_variables_no_dollar_left() -> None:
    exprs = dashboard_exprs(DASHBOARDS)
    assert all("$" not in expr for _, _, expr in exprs)
    latency = [expr for _, panel, expr in exprs if panel == "Latency percentiles"]
    assert 'engine=~".*"' in latency[0]
    assert "[1m]" in latency[0]


def test_dashboard_exprs_unknown_variable_raises(tmp_path: Path) -> None:
    dashboard = tmp_path / "d.json"
    dashboard.write_text(
        '{"title": "d", "panels": [{"title": "p", "targets": [{"expr": "up{job=\\"$nope\\"}"}]}]}'
    )
    with pytest.raises(ValueError, match=r"d / p: unknown variable \$nope"):
        dashboard_exprs([dashboard])


def test_running_prometheus_no_targets_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="targets is empty"), running_prometheus([], tmp_path):
        pass
