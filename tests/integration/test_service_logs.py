"""Structured logs of the services, with secrets in the environment (issue 7, item 5), and the
training panels of the dashboard fed by a real training run (item 1).

One real Dagster materialization of the daily chain (the CLI, small config, Dask worker processes,
the JSON console logger selected by run config) and one real Hamilton replay (the CLI) share a
PostgreSQL Brain Library whose DSN carries a password, plus an exchange key and secret. Every log
line of both is JSON with the service's keys (engine: service, run_id, partition, step_key;
hamilton: service, release_id, and symbol on per-coin lines); no secret value appears in any
output, in any file the run wrote, or in the Brain Library's tables. Then a Hamilton started on
that Brain Library exports the training series a real Prometheus scrapes, and the dashboard's
"Training job status" and "Training job duration" expressions return them with their labels.
"""

import asyncio
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, ReplayWindow
from hamilton_exec.telemetry.hamilton_metrics import fit_seconds
from tests.e2e.test_dagster_cli import SMALL
from tests.integration.brain_fixtures import PG_ADMIN_DSN, require_postgres
from tests.integration.dagster_fixtures import engine_env
from tests.integration.prometheus_harness import (
    REPO_ROOT,
    dashboard_exprs,
    free_port,
    require_prometheus_tools,
    running_prometheus,
)
from trading_core.brain import BrainLibrary
from trading_core.config import EngineConfig, load_config, secret_values
from trading_core.config.loader import default_config_paths
from trading_core.market.sources import make_source
from trading_core.types import Stage

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PARTITION = "2026-10-31"
DAY = ("coin_universe", "liquidity_ranking", "ohlcv", "trained_models", "walk_forward_metrics",
       "best_models", "shadow_evaluation", "brain_library_push")  # fmt: skip
# JSON console logger (engine_assets.logging) selected; steps in one process, Dask workers real
RUN_CONFIG = {"loggers": {"console": {}}, "execution": {"config": {"in_process": {}}}}
EXCHANGE_KEY = "exk-7f3a9c2e51d04b6b"
EXCHANGE_SECRET = "exs-c81d44f0a9e2437d"  # noqa: S105 - a test value, looked for in the logs
PG_PASSWORD = "pgpw-5b0e9d7a31c6"  # noqa: S105 - trust auth: PostgreSQL ignores it
SECRETS = (EXCHANGE_KEY, EXCHANGE_SECRET, PG_PASSWORD)
ENGINE_KEYS = ("service", "run_id", "partition", "step_key")
HAMILTON_KEYS = ("service", "release_id")
# what Python's warnings module prints at import, before any log configuration: path:line:
# Category: message, then the offending source line indented
WARNING_LINE = re.compile(r"^\S+\.py:\d+: \w*Warning: ")
DASHBOARDS = sorted((REPO_ROOT / "docker" / "grafana" / "dashboards").glob("*.json"))
TRAINING_PANELS = ("Training job status", "Training job duration")
CLI = [sys.executable, "-c", "from coin_engine.cli.app import run; run()"]


@dataclass(frozen=True)
class Services:
    root: Path
    env: dict[str, str]
    config: EngineConfig


@dataclass(frozen=True)
class DagsterRun:
    run_id: str
    cli_stdout: str
    cli_stderr: str
    compute_logs: dict[str, str]  # file name -> text


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Isolated config + env for both services: a fresh schema of the real PostgreSQL as the
    Brain Library (DSN with a password), exchange keys, a fresh DAGSTER_HOME."""
    require_postgres()
    root = tmp_path_factory.mktemp("service_logs")
    schema = f"logs_test_{uuid.uuid4().hex[:12]}"
    dsn = (
        make_url(PG_ADMIN_DSN)
        .set(password=PG_PASSWORD)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    overrides = {
        **engine_env(root),
        **SMALL,
        "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": dsn,
        "ENGINE__DATA__EXCHANGE__API_KEY": EXCHANGE_KEY,
        "ENGINE__DATA__EXCHANGE__API_SECRET": EXCHANGE_SECRET,
    }
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE__")}
    env = {**inherited, **overrides, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    config = load_config(default_config_paths(REPO_ROOT / "config"), env=overrides)
    assert sorted(secret_values(config)) == sorted(SECRETS)  # the services will see all three
    admin = create_engine(PG_ADMIN_DSN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield Services(root, env, config)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(scope="module")
def dagster_run(services: Services) -> DagsterRun:
    command = [
        str(Path(sys.executable).parent / "dagster"), "asset", "materialize",
        "-m", "engine_assets.definitions", "--select", ",".join(DAY), "--partition", PARTITION,
        "--config-json", json.dumps(RUN_CONFIG),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=services.env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    home = Path(services.env["DAGSTER_HOME"])
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        runs = instance.get_runs()
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]
        run_id = runs[0].run_id
    finally:
        instance.dispose()
    logs_dir = home / "storage" / run_id / "compute_logs"
    compute_logs = {p.name: p.read_text() for p in sorted(logs_dir.glob("*.[eo][ru][rt]"))}
    assert compute_logs, f"no compute logs in {logs_dir}"
    return DagsterRun(run_id, done.stdout, done.stderr, compute_logs)


@pytest.fixture(scope="module")
def hamilton_replay(
    services: Services, dagster_run: DagsterRun
) -> subprocess.CompletedProcess[str]:
    """The CLI's paper replay of the last 6 bars on the release the Dagster run pushed."""
    command = [*CLI, "hamilton", "run", "--replay", "--max-bars", "6", "--speed", "0",
               "--metrics-port", "0", "--health-port", "0"]  # fmt: skip
    done = subprocess.run(
        command, cwd=services.root, env=services.env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _json_lines(text_: str, where: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text_.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"{where} line {number} is not JSON: {line[:300]!r}")
        assert isinstance(record, dict), f"{where} line {number}: {line[:300]!r}"
        records.append(record)
    return records


def _missing_keys(records: list[dict[str, Any]], keys: tuple[str, ...]) -> list[str]:
    return [f"{r.get('event')!r} lacks {k}" for r in records for k in keys if k not in r]


def _not_json_nor_warning(stderr: str) -> list[str]:
    """Lines that are neither JSON nor a Python import-time warning (message + source line)."""
    bad, after_warning = [], False
    for line in stderr.splitlines():
        if WARNING_LINE.match(line):
            after_warning = True
            continue
        if after_warning and line.startswith("  "):
            after_warning = False
            continue
        after_warning = False
        if line.strip() and not line.startswith("{"):
            bad.append(line)
    return bad


def _files_containing(root: Path, secrets: tuple[str, ...]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return found


def _brain_rows_containing(dsn: str, secrets: tuple[str, ...]) -> list[str]:
    """Every row of every table of the Brain Library's schema, as text, searched."""
    engine = create_engine(dsn)
    found = []
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            ).scalars()
            for table in list(tables):
                for (row,) in conn.execute(text(f'SELECT t::text FROM "{table}" t')):  # noqa: S608
                    found += [f"{table}: {s}" for s in secrets if s in row]
    finally:
        engine.dispose()
    return found


def test_every_code_location_asset_binds_its_run() -> None:
    # in-process the run's keys of an asset without bind_run would leak from the step before it
    from engine_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    unbound = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        fn = node.assets_def.op.compute_fn.decorated_fn  # type: ignore[union-attr]
        if "bind_run(context" not in inspect.getsource(fn):
            unbound.append(key.to_user_string())
    assert not unbound, f"assets that do not call engine_assets.logging.bind_run: {unbound}"


def test_dagster_run_logs_json_with_run_keys_and_no_secrets(
    services: Services, dagster_run: DagsterRun
) -> None:
    records = [
        record
        for name, content in dagster_run.compute_logs.items()
        for record in _json_lines(content, f"compute log {name}")
    ]
    assert not _missing_keys(records, ENGINE_KEYS)
    assert {r["service"] for r in records} == {"engine"}
    assert {r["run_id"] for r in records} == {dagster_run.run_id}
    assert {r["partition"] for r in records} == {PARTITION}
    loggers = {r.get("logger_name", "") for r in records}
    assert "dagster" in loggers  # Dagster's own records through the JSON console logger
    assert any(name.startswith("trading_core.training") for name in loggers)
    steps = {r["step_key"] for r in records}
    assert {"liquidity_ranking", "ohlcv", "trained_models", "brain_library_push"} <= steps
    masked = [r["dsn"] for r in records if r.get("event") == "brain_migrated"]
    assert masked and all(":***@" in dsn for dsn in masked)
    # the CLI's stderr mirrors the run's log lines; the rest is Python's import-time warnings
    cli_json = _json_lines(
        "\n".join(x for x in dagster_run.cli_stderr.splitlines() if x.startswith("{")), "stderr"
    )
    assert len(cli_json) == len(records)
    assert not _not_json_nor_warning(dagster_run.cli_stderr)
    _json_lines(dagster_run.cli_stdout, "cli stdout")  # nothing else on stdout
    outputs = [dagster_run.cli_stdout, dagster_run.cli_stderr, *dagster_run.compute_logs.values()]
    assert not [s for s in SECRETS for out in outputs if s in out]
    assert not _files_containing(Path(services.env["DAGSTER_HOME"]), SECRETS)


def test_hamilton_logs_json_with_release_and_symbols_and_no_secrets(
    services: Services, hamilton_replay: subprocess.CompletedProcess[str]
) -> None:
    records = _json_lines(hamilton_replay.stderr, "hamilton stderr")
    assert not _missing_keys(records, HAMILTON_KEYS)
    assert {r["service"] for r in records} == {"hamilton"}
    library = BrainLibrary.from_config(services.config)
    try:
        release = library.latest_release()
        assert release is not None
        coins = {library.get_model(name).key.coin for name in release.production}
    finally:
        library.close()
    assert {r["release_id"] for r in records} == {release.id}
    decisions = [r for r in records if r["event"] == "decision"]
    symbols = {f"{coin}/{services.config.engine.quote}" for coin in coins}
    assert decisions and {r["symbol"] for r in decisions} == symbols
    assert len(decisions) == 6 * len(symbols)
    assert {"hamilton_ready", "hamilton_stopped"} <= {r["event"] for r in records}
    outputs = (hamilton_replay.stdout, hamilton_replay.stderr)
    assert not [s for s in SECRETS for out in outputs if s in out]


def test_no_secret_in_any_file_or_brain_table(
    services: Services, hamilton_replay: subprocess.CompletedProcess[str]
) -> None:
    assert not _files_containing(services.root, SECRETS)
    dsn = services.config.training.model_versioning.brain_library_dsn.get_secret_value()
    assert not _brain_rows_containing(dsn, SECRETS)


def test_training_panels_show_the_real_training_run(
    services: Services, dagster_run: DagsterRun, tmp_path: Path
) -> None:
    """Item 1: Hamilton exports the Brain Library's training series at start; the dashboard's
    training panels return them, with their labels, from a real Prometheus."""
    require_prometheus_tools()
    config = services.config
    library = BrainLibrary.from_config(config)
    source = make_source(config)
    end = getattr(source, "end")  # noqa: B009 - the synthetic market's last bar
    port = free_port()
    settings = HamiltonSettings.from_config(
        config,
        replay=ReplayWindow(end - timedelta(days=1), end, speed=3600.0),
        state_dir=tmp_path / "state",
        metrics_port=port,
        health_port=None,
    )
    service = build_service(config, settings, library=library, source=source).service
    outcome: dict[str, Any] = {}

    def serve() -> None:
        try:
            outcome["summary"] = asyncio.run(service.run())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=serve)
    exprs = {
        panel: expr for _, panel, expr in dashboard_exprs(DASHBOARDS) if panel in TRAINING_PANELS
    }
    assert set(exprs) == set(TRAINING_PANELS)
    models = library.list_models()
    (tmp_path / "prom").mkdir()
    with running_prometheus([f"127.0.0.1:{port}"], tmp_path / "prom") as prom:
        thread.start()
        try:
            prom.wait_for_series("training_job_duration_seconds")
            status = prom.query(exprs["Training job status"])["result"]
            duration = prom.query(exprs["Training job duration"])["result"]
        finally:
            service.request_stop("test")
            thread.join(timeout=60)
            library.close()
    assert not thread.is_alive() and "error" not in outcome, outcome
    by_stage: dict[str, float] = {stage.value: 0.0 for stage in Stage}  # empty stages read 0
    newest: dict[tuple[str, str], Any] = {}
    for model in models:
        by_stage[model.stage.value] = by_stage.get(model.stage.value, 0) + 1
        key = (model.key.coin, model.key.regime)
        if key not in newest or model.version > newest[key].version:
            newest[key] = model
    assert {r["metric"]["status"]: float(r["value"][1]) for r in status} == by_stage
    seconds = {(r["metric"]["coin"], r["metric"]["regime"]): float(r["value"][1]) for r in duration}
    assert seconds == pytest.approx({k: fit_seconds(m) for k, m in newest.items()})
    assert all(value > 0 for value in seconds.values())  # measured fits, not the 0 fallback
