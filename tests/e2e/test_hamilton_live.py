"""``coin-engine hamilton run --live`` as a process against the local Binance simulator, with
the keys in the environment and ccxt pointed at the simulator by ``data.exchange.base_url``.

One story, in order: the service starts and reconciles (the 0.5 BTC on the exchange becomes
its position); ``hamilton kill`` flattens it (the order is accepted and its response lost to a
timeout) and the service is ``kill -9``-ed while that order's outcome is still unknown; the
restart looks the order up instead of sending it again and reconciles: flat, the kill switch
still on, exactly one order on the exchange; ``hamilton resume`` and SIGTERM end it cleanly.
Keys never appear in the output, the state files or ``status``.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hamilton_exec.exchange_sim.server import SimulatorServer

CLI = [sys.executable, "-c", "from coin_engine.cli.app import run; run()"]
API_KEY = "e2e-key-4f1c9a"
API_SECRET = "e2e-secret-7d2b0e91"  # noqa: S105 - the simulator's key for this test
TOKEN = "e2e-control-token"  # noqa: S105
SYMBOLS = ("BTC/USDT", "ETH/USDT")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(
        symbols=SYMBOLS, balances={"USDT": 100_000, "BTC": 0.5}, api_key=API_KEY,
        api_secret=API_SECRET,
    ) as server:  # fmt: skip
        yield server


def _config(tmp_path: Path, base_url: str) -> Path:
    data: dict[str, Any] = {
        "engine": {"active_coins": 2, "timeframes": ["1m"]},
        "data": {
            "source": "ccxt",
            "exchange": {
                "base_url": base_url,
                "timeout_ms": 1500,
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
        # spot, priced like the simulator's spot venue (10 bps taker fee)
        "cost_model": {
            "instrument": "spot",
            "fee_schedule": {"binance": {"maker_bps": 10.0, "taker_bps": 10.0}},
        },
        "hamilton": {
            "state_path": str(tmp_path / "state"),
            "history_bars": 300,
            "orders": {"timeout_s": 5, "poll_interval_s": 0.2, "market_type": "spot"},
        },
        "observability": {"prometheus": {"port": 0}, "log_format": "json"},
    }
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE__")}
    return {
        **env,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "ENGINE__DATA__EXCHANGE__API_KEY": API_KEY,
        "ENGINE__DATA__EXCHANGE__API_SECRET": API_SECRET,
        "HAMILTON_CONTROL_TOKEN": TOKEN,
    }


def _start(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        *CLI, "-c", str(config), "hamilton", "run", "--live", "--symbols", ",".join(SYMBOLS),
        "--health-port", str(port), "--metrics-port", "0",
    ]  # fmt: skip
    handle = log.open("ab")
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=_env())


def _wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("service never became healthy:\n" + log.read_text()[-3000:])


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _cli_root(config, "hamilton", *args)


def _cli_root(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "-c", str(config), *args],
        capture_output=True, text=True, timeout=120, env=_env(), check=False,
    )  # fmt: skip


def _status(config: Path, port: int) -> dict[str, Any]:
    done = _cli(config, "status", "--port", str(port), "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _btc(simulator: SimulatorServer) -> float:
    balances = simulator.state()["spot"]["balances"]
    entry = balances.get("BTC") or {}
    return float(entry.get("free", 0)) + float(entry.get("locked", 0))


def _open_orders(simulator: SimulatorServer) -> list[dict[str, Any]]:
    orders = simulator.state()["spot"]["orders"]
    return [o for o in orders if o["status"] in ("NEW", "PARTIALLY_FILLED")]


@pytest.mark.e2e
@pytest.mark.slow
def test_live_run_kill_flattens_and_kill9_restart_neither_doubles_nor_forgets(
    tmp_path: Path, simulator: SimulatorServer
) -> None:
    config = _config(tmp_path, simulator.base_url)
    migrated = _cli_root(config, "brain", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    port = _free_port()
    log = tmp_path / "hamilton.log"
    process = _start(config, port, log)
    try:
        _wait_healthy(port, process, log)
        status = _status(config, port)
        positions = {p["symbol"]: p for p in status["positions"]}
        assert positions["BTC/USDT"]["qty"] == pytest.approx(0.5)  # reconciled at start

        # the flatten order is accepted, its answer lost; kill -9 while it is unknown
        simulator.faults.inject("POST /api/v3/order", "accept_then_timeout", delay_s=4.0)
        started = time.monotonic()
        done = _cli(config, "kill", "--reason", "e2e drill", "--port", str(port))
        assert done.returncode == 0, done.stderr
        while _btc(simulator) > 0 and time.monotonic() - started < 2.0:
            time.sleep(0.05)
        assert _btc(simulator) == pytest.approx(0.0)  # flat on the exchange within 2 s
        assert _open_orders(simulator) == []  # and nothing left open
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

        process = _start(config, port, log)
        _wait_healthy(port, process, log)
        status = _status(config, port)
        assert status["risk"]["kill_switch"] is True
        assert not [p for p in status["positions"] if p["symbol"] == "BTC/USDT"]
        assert status["open_orders"] == []
        per_id = simulator.state()["orders_per_client_id"]
        assert len(per_id) == 1 and set(per_id.values()) == {1}  # one order, sent once

        done = _cli(config, "resume", "--reason", "drill over", "--port", str(port))
        assert done.returncode == 0, done.stderr
        assert _status(config, port)["risk"]["kill_switch"] is False
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    written = log.read_text() + "".join(
        p.read_text(errors="replace") for p in (tmp_path / "state").rglob("*") if p.is_file()
    )
    assert API_KEY not in written and API_SECRET not in written and TOKEN not in written
