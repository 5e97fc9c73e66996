"""``coin-engine data rank`` and ``hamilton run --replay`` as processes on a store of real
Binance candles with a corrupt file: the file is named in one line and skipped; when every input
is corrupt the command prints one line and exits 2; ``--as-of`` ranks a historical store."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.dagster_fixtures import engine_env
from tests.unit.market_fixtures import require_real_data

CLI = [sys.executable, "-c", "from coin_engine.cli.app import run; run()"]
COINS = ("ETH", "ADA", "XRP")
GARBAGE = b"not a parquet file, a truncated download" * 8


def _store(tmp_path: Path, coins: tuple[str, ...] = COINS, corrupt: str = "BAD") -> Path:
    real = require_real_data()
    store = tmp_path / "ohlcv"
    store.mkdir()
    for coin in coins:
        shutil.copy(real / f"{coin}_USDT-1h.parquet", store / f"{coin}_USDT-1h.parquet")
    (store / f"{corrupt}_USDT-1h.parquet").write_bytes(GARBAGE)
    return store


def _run(tmp_path: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE__")}
    env.update(engine_env(tmp_path, ENGINE__DATA__SOURCE="parquet"))
    env["ENGINE__OBSERVABILITY__LOG_PATH"] = str(tmp_path / "engine.log")  # stderr: errors only
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env["COLUMNS"] = "300"  # rich wraps at the terminal width: keep long paths on one line
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    return lines[0]


@pytest.mark.e2e
def test_data_rank_corrupt_file_named_in_one_line_and_skipped(tmp_path: Path) -> None:
    store = _store(tmp_path)
    done = _run(tmp_path, "data", "rank", "--top", "5")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert all(f"{c}/USDT" in done.stdout for c in COINS)
    assert f"corrupt files skipped: {store / 'BAD_USDT-1h.parquet'}" in done.stdout
    logged = (tmp_path / "engine.log").read_text()
    assert '"universe_file_skipped"' in logged and "BAD_USDT-1h.parquet" in logged


@pytest.mark.e2e
def test_data_rank_every_file_corrupt_exits_2_with_one_line(tmp_path: Path) -> None:
    store = _store(tmp_path, coins=())
    line = _one_error_line(_run(tmp_path, "data", "rank"))
    assert str(store / "BAD_USDT-1h.parquet") in line and "coin-engine data fetch" in line


@pytest.mark.e2e
def test_data_rank_as_of_on_historical_store_knows_spreads(tmp_path: Path) -> None:
    _store(tmp_path)
    for args in (("--as-of", "2021-07-01"), ("--as-of", "2021-07-01T12:00:00+02:00"), ()):
        done = _run(tmp_path, "data", "rank", *args)
        assert done.returncode == 0, done.stderr[-2000:]
        text = " ".join(done.stdout.split())
        assert "3 coins kept" in text and "max_spread_bps: 0" in text, text


@pytest.mark.e2e
def test_data_rank_bad_as_of_exits_2_with_one_line(tmp_path: Path) -> None:
    _store(tmp_path)
    line = _one_error_line(_run(tmp_path, "data", "rank", "--as-of", "2021-13-01"))
    assert "'2021-13-01'" in line and "YYYY-MM-DD" in line


def _replay(tmp_path: Path, symbols: str) -> subprocess.CompletedProcess[str]:
    assert _run(tmp_path, "brain", "migrate").returncode == 0
    return _run(
        tmp_path, "hamilton", "run", "--replay", "--from", "2021-07-10", "--to", "2021-07-11",
        "--symbols", symbols, "--metrics-port", "0", "--health-port", "0", timeout=300,
    )  # fmt: skip


@pytest.mark.e2e
@pytest.mark.slow
def test_replay_corrupt_coin_skipped_with_a_logged_line(tmp_path: Path) -> None:
    _store(tmp_path, coins=("ETH",))
    done = _replay(tmp_path, "ETH/USDT,BAD/USDT")
    assert done.returncode == 0, done.stderr[-2000:]
    logged = (tmp_path / "engine.log").read_text()
    skipped = [x for x in logged.splitlines() if '"replay_symbol_skipped"' in x]
    assert any("BAD_USDT-1h.parquet" in x and "corrupt_file" in x for x in skipped)
    assert any("BTC/USDT" in x and "optional_symbol_missing" in x for x in skipped)


@pytest.mark.e2e
def test_replay_every_coin_corrupt_exits_2_with_one_line(tmp_path: Path) -> None:
    store = _store(tmp_path, coins=())
    line = _one_error_line(_replay(tmp_path, "BAD/USDT"))
    assert str(store / "BAD_USDT-1h.parquet") in line
