"""docker/prometheus: the scrape config and alerting rules pass Debian's promtool, and the
rules' unit tests (alerts_test.yml) pass `promtool test rules`."""

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.prometheus_harness import require_prometheus_tools
from trading_core.observability import metric_names

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "docker" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
REQUIRED_ALERTS = {
    "HamiltonDown",
    "HamiltonDataStale",
    "HamiltonReleaseTooOld",
    "HamiltonDailyLossHalt",
    "EngineErrorRateSpike",
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
