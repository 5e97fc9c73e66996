"""`coin-engine demo` end to end through the console script, on a small embedded market."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Three coins, otherwise the demo's defaults (no statistical override): the market plants 3x the
# default structure so that the promotion gate has edge to confirm and Hamilton has a release
SMALL = {
    "ENGINE__DATA__SYNTHETIC__STRUCTURE_STRENGTH": "3",
    "ENGINE__ENGINE__ACTIVE_COINS": "3",
    "ENGINE__DATA__SYNTHETIC__N_COINS": "60",
    "ENGINE__TRAINING__DISTRIBUTED__NUM_WORKERS": "2",
    "ENGINE__HAMILTON__HEALTH_PORT": "0",
    "ENGINE__OBSERVABILITY__PROMETHEUS__PORT": "0",
}


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_runs_the_dag_and_hamilton_and_writes_a_report(tmp_path: Path) -> None:
    env = {**os.environ, **SMALL, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    command = [str(Path(sys.executable).parent / "coin-engine"), "demo", "--hamilton-bars", "24"]
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Best production models" in output
    assert "Hamilton" in output and "decision events" in output
    reports = list((tmp_path / "reports").glob("demo-*/README.md"))
    assert reports, output[-2000:]
    text = reports[0].read_text()
    assert "Walk-forward per key" in text
    assert "How likely is this luck" in text and "p_adjusted" in text
    assert "luck: p adj" in output and "MIN_TEST_TRADES" not in text + output
    assert (reports[0].parent / "sharpe_heatmap.png").stat().st_size > 1000
    assert (tmp_path / "data" / "brain" / "brain.db").exists()
    # structured logs go to the report folder, the terminal keeps the progress and the results
    log_lines = (reports[0].parent / "demo.log").read_text().splitlines()
    events = [json.loads(line) for line in log_lines]
    names = {e["event"] for e in events}
    assert {"release_pushed", "decision", "hamilton_ready"} <= names
    assert {e["service"] for e in events if e["event"] == "decision"} == {"hamilton"}
    assert "store_appended" not in output and "dagster - DEBUG" not in output
    rerun = subprocess.run(
        [str(Path(sys.executable).parent / "coin-engine"), "brain", "releases"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
