"""docker/prometheus: the scrape config and alerting rules pass Debian's promtool, the
rules' unit tests (alerts_test.yml) pass `promtool test rules`, and a real Prometheus loaded with
alerts.yml raises the live-trading alerts on the series Hamilton's own metrics object exports."""

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import start_http_server

from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from tests.integration.prometheus_harness import (
    REPO_ROOT,
    PrometheusServer,
    free_port,
    require_prometheus_tools,
    running_prometheus,
)
from trading_core.config.models import ExchangeSection
from trading_core.observability import metric_names
from trading_core.risk import TradingState

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "docker" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
REQUIRED_ALERTS = {
    "HamiltonDown",
    "HamiltonDataStale",
    "HamiltonDailyLossHalt",
    "EngineErrorRateSpike",
    "HamiltonKillSwitchOn",
    "HamiltonClockSkew",
    "HamiltonOrdersRefused",
    "HamiltonReconcileDrift",
    "HamiltonReconcileFailing",
    "HamiltonEventsSpooling",
    "HamiltonMarketDataStale",
    "EngineDailyRunFailed",  # issue 13; HamiltonReleaseTooOld gave way to EngineNoReleaseIn26h
    "EngineNoReleaseIn26h",
}
# Prometheus adds these series names itself; the rest must come from metric_names.py.
PROMETHEUS_OWN_SERIES = {"up"}
# prometheus_client exposes a counter `x` as `x_total` and a histogram as `x_bucket/_sum/_count`.
EXPOSITION_SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tools = require_prometheus_tools()
    return subprocess.run(
        [str(tools.promtool), *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _declared_series() -> set[str]:
    names = {
        value
        for key, value in vars(metric_names).items()
        if key.isupper() and isinstance(value, str)
    }
    return {name + suffix for name in names for suffix in EXPOSITION_SUFFIXES}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("check", "config", "prometheus.yml"), "SUCCESS"),
        (("check", "rules", "alerts.yml"), "SUCCESS"),
        (("test", "rules", "alerts_test.yml"), "SUCCESS"),
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool_prometheus_files_succeed(args: tuple[str, ...], expected: str) -> None:
    result = _promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert expected in result.stdout + result.stderr


def test_promtool_broken_rule_fails(tmp_path: Path) -> None:
    """The check is real: a rule with bad PromQL is rejected."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"alert": "X", "expr": "sum(up"}]}]})
    )
    result = _promtool("check", "rules", str(broken))
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


def test_alerts_required_ones_present() -> None:
    assert {rule["alert"] for rule in _rules()} >= REQUIRED_ALERTS


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_alert_has_severity_and_text(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"]
    assert rule["annotations"]["description"]


def test_alerts_each_has_a_firing_unit_test() -> None:
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in _rules()} - fired == set()


def test_alert_unit_tests_use_declared_metric_names() -> None:
    """Input series are named as the product exports them, so a passing unit test means the
    alert fires on real metrics, not on a misspelt name."""
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    names = {
        series["series"].split("{", 1)[0].strip()
        for test in tests
        for series in test["input_series"]
    }
    assert names - _declared_series() - PROMETHEUS_OWN_SERIES == set()


# --- the live-trading alerts on Hamilton's real metrics -----------------------------------------

LIVE_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
# After live_trading_bad_hour: (alert, state, labels it must carry) and alerts that must stay quiet.
LIVE_ALERTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("HamiltonKillSwitchOn", "firing", {}),
    ("HamiltonOrdersRefused", "firing", {"reason": "insufficient_balance"}),
    ("HamiltonReconcileDrift", "firing", {"result": "drift"}),
    ("HamiltonReconcileFailing", "firing", {"result": "failed"}),
    ("HamiltonClockSkew", "pending", {}),  # for: 2m
    ("HamiltonEventsSpooling", "pending", {}),  # for: 10m
    ("EngineErrorRateSpike", "pending", {"engine": "broker"}),  # for: 5m
)
LIVE_QUIET = ("HamiltonDailyLossHalt", "HamiltonDown", "HamiltonDataStale")


def live_trading_normal(metrics: HamiltonMetrics) -> None:
    """A live Hamilton trading normally, set through the calls its engine makes: two open
    positions and a flat symbol, an order in flight, a clean reconcile, a fill, one broker error
    (which creates the series the later ones add to)."""
    book = (("BTCUSDT", 0.01, 650.0, 1), ("ETHUSDT", -0.5, -1700.0, 0), ("SOLUSDT", 0.0, 0.0, 0))
    for symbol, qty, notional, open_orders in book:
        metrics.position_qty.labels(symbol).set(qty)
        metrics.position_notional.labels(symbol).set(notional)
        metrics.open_orders.labels(symbol).set(open_orders)
    metrics.clock_offset.set(12.0)
    metrics.events_spool_depth.set(0)
    for symbol in (*LIVE_SYMBOLS, "cash"):
        metrics.reconcile_drift.labels(symbol).set(0.0)
    metrics.reconciles.labels("applied").inc()
    metrics.order_reports.labels("filled", "none").inc()
    metrics.cost_error.labels(metrics.venue).observe(0.3)
    metrics.count_error("broker", "exchange_error")


def live_trading_bad_hour(metrics: HamiltonMetrics) -> None:
    """Everything the live-trading alerts watch goes wrong at once. The spool depth is set last:
    a scrape that reads 4 there has read every other change."""
    metrics.order_reports.labels("filled", "none").inc(2)
    for cost_error_bps in (-0.2, 0.7, 2.5, 5.0):
        metrics.cost_error.labels(metrics.venue).observe(cost_error_bps)
    # a reason's series is created by its first refusals: three in one burst
    metrics.order_reports.labels("rejected", "insufficient_balance").inc(3)
    metrics.order_reports.labels("rejected", "clock_skew").inc(5)
    metrics.reconcile_drift.labels("ETHUSDT").set(0.1)
    metrics.reconcile_drift.labels("cash").set(-12.5)
    metrics.reconciles.labels("drift").inc()
    metrics.reconciles.labels("failed").inc(2)
    for _ in range(19):
        metrics.count_error("broker", "exchange_error")
    metrics.kill_switch.set(1.0)  # HamiltonEngine.kill
    metrics.set_risk_state(TradingState.HALTED)
    metrics.order_reports.labels("canceled", "kill_switch").inc()
    metrics.open_orders.labels("ETHUSDT").set(1)  # the flattening order
    metrics.clock_offset.set(-1500.0)
    metrics.events_spool_depth.set(4)


@contextmanager
def live_hamilton_prometheus(
    tmp_path: Path, rule_files: Sequence[Path] = ()
) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping Hamilton's own metrics object
    (hamilton_exec.telemetry.hamilton_metrics) through live_trading_normal, then
    live_trading_bad_hour: every rate() and increase() has a sample from before the bad hour and one
    from after."""
    require_prometheus_tools()
    metrics = HamiltonMetrics(venue="binance")
    live_trading_normal(metrics)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    try:
        with running_prometheus([f"127.0.0.1:{port}"], tmp_path, rule_files=rule_files) as prom:
            prom.wait_for_series(
                f"count_over_time({metric_names.EVENTS_SPOOL_DEPTH}[1m]) >= 2", timeout_s=30
            )
            live_trading_bad_hour(metrics)
            prom.wait_for_series(f"{metric_names.EVENTS_SPOOL_DEPTH} == 4", timeout_s=10)
            yield prom
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def live_alerts_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with live_hamilton_prometheus(tmp_path_factory.mktemp("prometheus"), [ALERTS]) as prom:
        yield prom


def test_live_alerts_fire_on_real_hamilton_metrics(
    live_alerts_prometheus: PrometheusServer,
) -> None:
    """The rules read the names and labels Hamilton really exports (a misspelt label would
    leave an alert silent however well its promtool unit test passes)."""
    for alert, state, labels in LIVE_ALERTS:
        matchers = ", ".join(
            f'{key}="{value}"'
            for key, value in {"alertname": alert, "alertstate": state, **labels}.items()
        )
        live_alerts_prometheus.wait_for_series(f"ALERTS{{{matchers}}}", timeout_s=15)
    for alert in LIVE_QUIET:
        assert live_alerts_prometheus.query(f'ALERTS{{alertname="{alert}"}}')["result"] == []


def _rule(name: str) -> dict[str, Any]:
    return next(rule for rule in _rules() if rule["alert"] == name)


def test_clock_skew_alert_threshold_is_the_configured_bound() -> None:
    """HamiltonClockSkew fires where the live broker starts refusing orders."""
    bound = ExchangeSection().max_clock_skew_ms
    shipped = yaml.safe_load((REPO_ROOT / "config" / "scalable_engine.yaml").read_text())
    assert shipped["data"]["exchange"]["max_clock_skew_ms"] == bound
    expr = _rule("HamiltonClockSkew")["expr"]
    assert f"hamilton_exchange_clock_offset_ms > {bound}" in expr
    assert f"hamilton_exchange_clock_offset_ms < -{bound}" in expr
