"""``coin-engine hamilton run`` as a process: --live refused without keys, SIGTERM stops a
replay gracefully (tick finished, events flushed, state saved), ``events query`` reads them."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from tests.integration.hamilton_fixtures import (
    full_history_symbols,
    hamilton_config,
    hamilton_config_data,
    make_release,
    market,
)
from trading_core.brain import BrainLibrary

CLI = [sys.executable, "-c", "from coin_engine.cli.app import run; run()"]


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "hamilton.yaml"
    path.write_text(yaml.safe_dump(hamilton_config_data(tmp_path)))
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE__")}
    return {**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


@pytest.mark.e2e
def test_live_mode_refuses_to_start_without_exchange_keys(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "-c", str(_config_file(tmp_path)), "hamilton", "run", "--live"],
        capture_output=True, text=True, timeout=120, env=_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "keys missing" in done.stderr and "ENGINE__DATA__EXCHANGE__API_KEY" in done.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_sigterm_stops_a_replay_gracefully(tmp_path: Path) -> None:
    config = hamilton_config(tmp_path)
    source = market(config)
    symbols = full_history_symbols(source)[:2]
    library = BrainLibrary.from_config(config)
    library.migrate()
    make_release(library, config, source, symbols, train_end=source.end - timedelta(days=3))
    command = [
        *CLI, "-c", str(_config_file(tmp_path)), "hamilton", "run", "--replay",
        "--speed", "7200", "--symbols", ",".join(symbols), "--metrics-port", "0",
        "--health-port", "0",
    ]  # fmt: skip
    env = {**_env(), "ENGINE__OBSERVABILITY__LOG_FORMAT": "json"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    decided = 0
    deadline = time.monotonic() + 90
    assert process.stderr is not None
    while decided < 6 and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        if json.loads(line).get("event") == "decision":
            decided += 1
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()[-2000:]
    stopped = [json.loads(x) for x in err.decode().splitlines() if '"hamilton_stopped"' in x]
    assert stopped and stopped[0]["reason"] == "SIGTERM"
    ticks = stopped[0]["ticks"]
    assert 0 < ticks < 48
    state = json.loads((Path(config.hamilton.state_path) / "hamilton_state.json").read_text())
    assert set(state["memories"]) == set(symbols)
    assert len(library.query_decision_events()) == ticks * len(symbols)
    queried = subprocess.run(
        [*CLI, "-c", str(_config_file(tmp_path)), "events", "query", "--symbol", symbols[0],
         "--json"],
        capture_output=True, text=True, timeout=120, env=_env(), check=False,
    )  # fmt: skip
    rows = [json.loads(x) for x in queried.stdout.splitlines()]
    assert len(rows) == ticks and all(r["symbol"] == symbols[0] for r in rows)
    assert all("outcome" in r for r in rows)
    library.close()
