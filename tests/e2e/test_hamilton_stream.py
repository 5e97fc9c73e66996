"""``coin-engine hamilton run --paper`` with ``data.source: ccxt`` against the simulator: the
streaming feed (ccxt.pro websockets) delivers candles and books of 24 coins, and every
DecisionEvent of a coin whose book is fresh names the live book as its spread source.

The simulator runs at the wall clock's pace (the paper service reads the wall clock), 1m bars:
the first tick is the bar that closed before the service subscribed (filled over REST), the
second streams; the run takes about one to two minutes.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hamilton_exec.exchange_sim.server import SimulatorServer

CLI = [sys.executable, "-c", "from coin_engine.cli.app import run; run()"]
SYMBOLS = ("BTC/USDT", "ETH/USDT", *[f"T{i:02d}/USDT" for i in range(22)])


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(symbols=SYMBOLS, seed=3, stream_interval_s=1.0) as server:
        yield server


def _config(tmp_path: Path, base_url: str) -> Path:
    data: dict[str, Any] = {
        "engine": {"active_coins": len(SYMBOLS), "timeframes": ["1m"]},
        "data": {
            "source": "ccxt",
            "exchange": {
                "base_url": base_url,
                "timeout_ms": 3000,
                "max_retries": 2,
                "retry_backoff_s": 0.1,
                "market_types": ["spot"],
            },
        },
        "training": {
            "model_versioning": {
                "storage_path": str(tmp_path / "artifacts"),
                "brain_library_dsn": f"sqlite:///{tmp_path / 'brain.db'}",
            }
        },
        "cost_model": {"instrument": "spot", "spread_source": "websocket"},
        "hamilton": {
            "state_path": str(tmp_path / "state"),
            "history_bars": 300,
            "orders": {"market_type": "spot"},
            "market_data": {"feed": "stream", "rest_fill_after_s": 2, "bar_grace_s": 20},
        },
        "observability": {"prometheus": {"port": 0}, "log_format": "json"},
    }
    path = tmp_path / "stream.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE__")}
    return {**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def test_paper_run_streams_24_coins_and_decides_with_the_live_spread(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    config = _config(tmp_path, simulator.base_url)
    migrate = subprocess.run(
        [*CLI, "-c", str(config), "brain", "migrate"],
        capture_output=True, text=True, timeout=120, env=_env(), check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr
    run = subprocess.run(
        [*CLI, "-c", str(config), "hamilton", "run", "--paper", "--symbols", ",".join(SYMBOLS),
         "--max-bars", "2", "--health-port", "0", "--metrics-port", "0"],
        capture_output=True, text=True, timeout=240, env=_env(), check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    logged = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert not [e for e in logged if e.get("event") in ("feed_failed", "feed_polling")]
    query = subprocess.run(
        [*CLI, "-c", str(config), "events", "query", "--json"],
        capture_output=True, text=True, timeout=120, env=_env(), check=False,
    )  # fmt: skip
    assert query.returncode == 0, query.stderr
    events = [json.loads(line) for line in query.stdout.splitlines() if line.strip()]
    bars = sorted({e["timestamp"] for e in events})
    assert len(bars) == 2, bars
    for bar in bars:  # one event per coin per bar: no bar missed or doubled
        at_bar = [e["symbol"] for e in events if e["timestamp"] == bar]
        assert sorted(at_bar) == sorted(SYMBOLS), bar
    costs = [e["metadata"]["costs"] for e in events if "costs" in e["metadata"]]
    sources = {c["spread_source"] for c in costs}
    assert "book" in sources, sources
    assert {c["slippage_source"] for c in costs} <= {"book", "model"}
    streamed = [e for e in events if e["timestamp"] == bars[-1]]
    assert all(e["metadata"]["costs"]["spread_source"] == "book" for e in streamed)
    assert all(e["metadata"]["costs"]["spread_fallback"] == "" for e in streamed)
