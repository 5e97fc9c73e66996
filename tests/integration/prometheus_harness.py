"""A real Prometheus for tests: start Debian's ``/usr/bin/prometheus`` on a free loopback port,
scrape given targets, query it over the HTTP API, stop it.

Also extracts every PromQL expression from Grafana dashboard JSON, with Grafana's variables
replaced by concrete values, so a test can evaluate each one against a real server.

    with running_prometheus(["127.0.0.1:9108"], tmp_path) as prom:
        prom.wait_for_series("hamilton_equity_usd")
        for dashboard, panel, expr in dashboard_exprs(DASHBOARDS):
            prom.query(expr)

HTTP API: https://prometheus.io/docs/prometheus/latest/querying/api/
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install_system_deps.sh"
PROMETHEUS_BIN = Path("/usr/bin/prometheus")
PROMTOOL_BIN = Path("/usr/bin/promtool")

# Grafana's built-in interval variables and the values a test substitutes for them.
DEFAULT_BUILTINS: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


class PromQLError(RuntimeError):
    """Prometheus refused or failed a query; the message quotes the expression and its error."""


@dataclass(frozen=True)
class PrometheusTools:
    prometheus: Path
    promtool: Path


@dataclass(frozen=True)
class PrometheusServer:
    """A running Prometheus reachable at ``base_url`` (loopback only)."""

    base_url: str
    config_path: Path
    log_path: Path

    def query(self, expr: str) -> dict[str, Any]:
        """Instant query at now; returns the API's ``data`` ({"resultType", "result"})."""
        url = f"{self.base_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = _get_json(url, expr)
        if body.get("status") != "success":
            raise PromQLError(
                f"query {expr!r} failed: {body.get('errorType')}: {body.get('error')}"
            )
        data: dict[str, Any] = body["data"]
        return data

    def wait_for_series(self, metric: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Poll ``metric`` (any PromQL expression) until it returns a non-empty vector."""
        deadline = time.monotonic() + timeout_s
        while True:
            result: list[dict[str, Any]] = self.query(metric)["result"]
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no series for {metric!r} after {timeout_s} s; targets: {self.targets()}"
                )
            time.sleep(0.2)

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with their health and last error (for failure messages)."""
        body = _get_json(f"{self.base_url}/api/v1/targets", "targets")
        active: list[dict[str, Any]] = body["data"]["activeTargets"]
        return [
            {key: target.get(key) for key in ("scrapeUrl", "health", "lastError")}
            for target in active
        ]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_prometheus_tools() -> PrometheusTools:
    """Debian's prometheus and promtool, installed by scripts/install_system_deps.sh if missing.

    Without them and without root to install them: skip, except under CI=true, where a missing
    tool is a failure (CI must test the monitoring stack for real).
    """
    if not (PROMETHEUS_BIN.exists() and PROMTOOL_BIN.exists()) and os.geteuid() == 0:
        subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, timeout=600)
    if PROMETHEUS_BIN.exists() and PROMTOOL_BIN.exists():
        return PrometheusTools(prometheus=PROMETHEUS_BIN, promtool=PROMTOOL_BIN)
    message = f"{PROMETHEUS_BIN} / {PROMTOOL_BIN} missing: run {INSTALL_SCRIPT} as root"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def running_prometheus(
    targets: Sequence[str],
    tmp_path: Path,
    scrape_interval: str = "1s",
    *,
    job_name: str = "hamilton",
    rule_files: Sequence[Path] = (),
    ready_timeout_s: float = 30.0,
) -> Iterator[PrometheusServer]:
    """Start Prometheus scraping ``targets`` (host:port) as job ``job_name``; stop it on exit.

    ``job_name`` defaults to the job the dashboards and alerts expect for Hamilton.
    The config, TSDB and log live under ``tmp_path``.
    """
    if not targets:
        raise ValueError("targets is empty; give at least one host:port to scrape")
    tools = require_prometheus_tools()
    port = free_port()
    config_path = _write_config(tmp_path, targets, scrape_interval, job_name, rule_files)
    log_path = tmp_path / "prometheus.log"
    command = [
        str(tools.prometheus),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = PrometheusServer(f"http://127.0.0.1:{port}", config_path, log_path)
    try:
        _wait_ready(server, process, ready_timeout_s)
        yield server
    finally:
        _stop(process)


def dashboard_exprs(
    paths: Iterable[Path], builtins: Mapping[str, str] = DEFAULT_BUILTINS
) -> list[tuple[str, str, str]]:
    """Every PromQL target of every panel as (dashboard title, panel title, expr).

    Grafana's built-in variables take the values in ``builtins``; a dashboard's own template
    variables take their "All" value (``allValue``, else ``.*``) or their current value.
    An unknown variable is an error naming the dashboard and panel.
    """
    found: list[tuple[str, str, str]] = []
    for path in paths:
        dashboard = json.loads(Path(path).read_text())
        variables = {**_template_values(dashboard), **builtins}
        for panel in _all_panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if "expr" not in target:
                    continue
                where = f"{dashboard['title']} / {panel.get('title', '?')}"
                found.append(
                    (
                        dashboard["title"],
                        panel.get("title", ""),
                        _substitute(target["expr"], variables, where),
                    )
                )
    return found


def _write_config(
    tmp_path: Path,
    targets: Sequence[str],
    scrape_interval: str,
    job_name: str,
    rule_files: Sequence[Path],
) -> Path:
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [str(Path(path).resolve()) for path in rule_files],
        "scrape_configs": [
            {"job_name": job_name, "static_configs": [{"targets": list(targets)}]},
        ],
    }
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path


def _get_json(url: str, what: str) -> dict[str, Any]:
    # The URL is always http://127.0.0.1:<port>/..., built here: no user-controlled scheme.
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            body: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        # 400/422 carry the API's JSON error body (bad_data, execution, ...)
        detail = json.loads(error.read() or b"{}")
        raise PromQLError(
            f"query {what!r} failed: HTTP {error.code} {detail.get('errorType')}: "
            f"{detail.get('error')}"
        ) from error
    return body


def _wait_ready(
    server: PrometheusServer, process: subprocess.Popen[bytes], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"prometheus exited with code {process.returncode}: "
                f"{server.log_path.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(f"{server.base_url}/-/ready", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise TimeoutError(
        f"prometheus not ready after {timeout_s} s: {server.log_path.read_text()[-2000:]}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        # collapsed rows keep their panels inside the row
        yield from _all_panels(panel.get("panels", []))


def _template_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("includeAll"):
            values[variable["name"]] = variable.get("allValue") or ".*"
            continue
        current = variable.get("current", {}).get("value", "")
        values[variable["name"]] = current[0] if isinstance(current, list) else str(current)
    return values


def _substitute(expr: str, variables: Mapping[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in variables:
            raise ValueError(
                f"{where}: unknown variable ${name} in {expr!r}; known: {sorted(variables)}"
            )
        return variables[name]

    return _VARIABLE.sub(replace, expr)
