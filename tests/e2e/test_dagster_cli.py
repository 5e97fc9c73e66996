"""The README's `dagster asset materialize` commands against a fresh DAGSTER_HOME (subprocesses,
Dask LocalCluster with worker processes, the real code location)."""

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tests.integration.dagster_fixtures import engine_env
from trading_core.brain import BrainLibrary, ModelKey
from trading_core.config import load_config

REPO = Path(__file__).resolve().parents[2]
PARTITION = "2026-10-31"
DAY = ("coin_universe,liquidity_ranking,ohlcv,trained_models,walk_forward_metrics,best_models,"
       "shadow_evaluation,brain_library_push")  # fmt: skip
# Two coins on one timeframe, otherwise the defaults (no statistical override): the market
# plants 3x the default structure, so the gate has real edge to confirm (BTC_RANGE_1h: p ~ 1e-5)
SMALL = {
    "ENGINE__DATA__SYNTHETIC__STRUCTURE_STRENGTH": "3",
    "ENGINE__ENGINE__ACTIVE_COINS": "2",
    "ENGINE__ENGINE__TIMEFRAMES": "[1h]",
    "ENGINE__DATA__SYNTHETIC__N_COINS": "60",
    "ENGINE__TRAINING__DISTRIBUTED__NUM_WORKERS": "1",
}


def _dagster(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "dagster"), *args]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, **engine_env(tmp_path), **SMALL, "DAGSTER_HOME": str(home)}
    for key, value in {**engine_env(tmp_path), **SMALL}.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.mark.e2e
@pytest.mark.slow
def test_readme_materialize_commands_work_from_fresh_dagster_home(cli_env: dict[str, str]) -> None:
    base = ["asset", "materialize", "-m", "engine_assets.definitions"]
    # the ranking creates the coin partitions and ohlcv stores the candles; then one coin x
    # regime x timeframe is retrained, validated and promoted through the gate before the daily
    # training ever saw it
    ranking = _dagster(
        [*base, "--select", "coin_universe,liquidity_ranking,ohlcv", "--partition", PARTITION],
        cli_env,
    )
    assert ranking.returncode == 0, ranking.stderr[-3000:]
    retrain_config = {"ops": {"coin_retrain": {"config": {
        "as_of_date": PARTITION, "regimes": ["RANGE"], "timeframes": ["1h"]}}}}  # fmt: skip
    one_key = _dagster([*base, "--select", "coin_retrain", "--partition", "BTC",
                        "--config-json", json.dumps(retrain_config)], cli_env)  # fmt: skip
    assert one_key.returncode == 0, one_key.stderr[-3000:]
    library = BrainLibrary.from_config(load_config())
    retrained = library.production_model(ModelKey("BTC", "RANGE", "1h"))
    assert retrained is not None, [(m.name, m.stage) for m in library.list_models()]
    gate = (retrained.validation or {})["gate"]
    assert gate["passed"] and gate["n_trials"] == 1 and gate["p_adjusted"] <= 0.05
    history = library.stage_history(retrained.name)
    assert history[-1].reason.startswith("first model of the key through the gate")
    day = _dagster([*base, "--select", DAY, "--partition", PARTITION], cli_env)
    assert day.returncode == 0, day.stderr[-3000:]
    assert "RUN_SUCCESS" in day.stderr + day.stdout
    release = library.latest_release()
    assert release is not None and retrained.name in release.production
    backfill = _dagster([*base, "--select", "coin_universe,liquidity_ranking",
                         "--partition-range", "2026-10-29...2026-10-30"], cli_env)  # fmt: skip
    assert backfill.returncode == 0, backfill.stderr[-3000:]
    assert library.load_ranking(date(2026, 10, 29)).height > 0
    assert library.load_ranking(date(2026, 10, 30)).height > 0
    validate = _dagster(["definitions", "validate", "-m", "engine_assets.definitions"], cli_env)
    assert validate.returncode == 0, validate.stderr[-2000:]
