"""``python bench/training_dag.py --small-real``: ``coin-engine engine run`` on a small real job,
the fixed start-up cost broken out, against the FreqAI figure recorded on this machine.

The job is the one freqtrade's FreqAI was measured on (/work/shared/STACK_NOTES.md, "Peers
measured here"): 10 real Binance coins, 1h only, 18 walk-forward windows of 20 d train / 5 d
test, partition 2021-07-16. Each repetition runs the CLI as a fresh process (imports, Dask
cluster, both fan-outs, the Brain Library: everything a user waits for) and reads:

- wall and CPU seconds, children included (the Dask workers are the CLI's children and are
  reaped by it, so ``RUSAGE_CHILDREN`` counts them);
- the per-step seconds the CLI prints;
- the fixed part, two ways: a probe process that times the imports of the CLI path and a
  cluster start (the same plan, workers importing the training code) and close; and the same
  run on 1 coin, whose wall minus one coin's marginal cost ((T10 - T1) / 9) is the intercept.

The machine is shared: every figure is the min and the median of ``repeats`` runs, with the load
average seen at each run. Set PYTHONPATH to another checkout to measure it instead (the
subprocesses inherit it).
"""

import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REAL_OHLCV = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "ohlcv"
COINS = ("BTC", "ETH", "ADA", "XRP", "DOGE", "DOT", "LINK", "LTC", "BCH", "UNI")
PARTITION = "2021-07-16"
# recorded on this machine (STACK_NOTES.md), not rerun here: freqtrade 2026.9 + FreqAI, one
# process, 1 thread, on the same coins, timeframe and windows
FREQAI_RECORDED = {"wall_s": 22.7, "cpu_s": 24.5}
TARGET_WALL_S = 20.0
STEP_LINE = re.compile(r"^(\w+)\s+([0-9.]+) s$")

# imports of the ``engine run`` path, then a cluster of the run's plan started, its workers
# importing the fan-out code (what the first task of each worker would pay), and closed
PROBE = """
import json, sys, time
sys.argv = ["coin-engine", "engine", "run"]  # what the console script sees
t0 = time.perf_counter()
import coin_engine.cli.app
import coin_engine.cli.engine_cmd
import engine_assets.definitions
t1 = time.perf_counter()
from trading_core.config import load_config
from trading_core.training.cluster import open_client, plan_for_this_machine
plan = plan_for_this_machine(load_config().training.distributed)
t2 = time.perf_counter()
with open_client(plan) as client:
    t3 = time.perf_counter()
    def warm():
        import importlib
        for name in ("trading_core.training.train", "trading_core.training.evaluate"):
            importlib.import_module(name)
    client.run(warm)
    t4 = time.perf_counter()
t5 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "cluster_start_s": t3 - t2,
                  "worker_imports_s": t4 - t3, "cluster_close_s": t5 - t4}))
"""


def job_env(tmp: Path, coins: int) -> dict[str, str]:
    """ENGINE__ overrides of the job: the real parquet store in ``tmp``, 1h, 18 x (20 d / 5 d)."""
    return {
        "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": f"sqlite:///{tmp}/brain.db",
        "ENGINE__TRAINING__MODEL_VERSIONING__STORAGE_PATH": str(tmp / "artifacts"),
        "ENGINE__DATA__STORE_PATH": str(tmp / "ohlcv"),
        "ENGINE__HAMILTON__STATE_PATH": str(tmp / "hamilton"),
        "ENGINE__OBSERVABILITY__DECISION_EVENTS__STORAGE_PATH": str(tmp / "events"),
        "ENGINE__DATA__SOURCE": "parquet",
        "ENGINE__ENGINE__ACTIVE_COINS": str(coins),
        "ENGINE__ENGINE__TIMEFRAMES": "[1h]",
        "ENGINE__VALIDATION__WALK_FORWARD__TRAIN_DAYS": "20",
        "ENGINE__VALIDATION__WALK_FORWARD__TEST_DAYS": "5",
        "ENGINE__VALIDATION__WALK_FORWARD__MAX_WINDOWS": "18",
        # every one of the 10 coins is kept (the liquidity filters would drop some)
        "ENGINE__COIN_SELECTION__MIN_DAILY_VOLUME_USD": "0",
        "ENGINE__COIN_SELECTION__MAX_SPREAD_BPS": "100000",
        "ENGINE__COIN_SELECTION__MIN_AGE_DAYS": "0",
        "ENGINE__TRAINING__DISTRIBUTED__NUM_WORKERS": "2",
    }


def _store(tmp: Path, coins: int) -> None:
    store = tmp / "ohlcv"
    store.mkdir(parents=True)
    for coin in COINS[:coins]:
        shutil.copy(REAL_OHLCV / f"{coin}_USDT-1h.parquet", store / f"{coin}_USDT-1h.parquet")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def engine_run(coins: int) -> dict[str, Any]:
    """One ``coin-engine engine run`` in a fresh process on a fresh store and Brain Library."""
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-small-real-{coins}-"))
    try:
        _store(tmp, coins)
        env = {**os.environ, **job_env(tmp, coins)}
        cli = Path(sys.executable).with_name("coin-engine")
        load = os.getloadavg()[0]
        cpu0, started = _children_cpu(), time.perf_counter()
        done = subprocess.run(
            [str(cli), "engine", "run", "--partition", PARTITION],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        wall, cpu = time.perf_counter() - started, _children_cpu() - cpu0
        if done.returncode != 0:
            raise RuntimeError(f"engine run failed ({done.returncode}): {done.stderr[-2000:]}")
        steps = {
            m.group(1): float(m.group(2))
            for line in done.stdout.splitlines()
            if (m := STEP_LINE.match(line.strip()))
        }
        return {"coins": coins, "wall_s": wall, "cpu_s": cpu, "load_1m": load, "steps": steps}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def probe() -> dict[str, float]:
    """Imports and one cluster start / worker warm-up / close, in a fresh process."""
    import json

    tmp = Path(tempfile.mkdtemp(prefix="bench-small-real-probe-"))
    try:
        env = {**os.environ, **job_env(tmp, len(COINS))}
        done = subprocess.run(
            [sys.executable, "-c", PROBE],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            check=True,
        )
        figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
        return figures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values)}


def small_real(repeats: int = 3) -> dict[str, Any]:
    """``repeats`` x (10-coin run, 1-coin run, probe), interleaved so load drifts hit all."""
    if not REAL_OHLCV.is_dir():
        raise SystemExit(f"real candles not found at {REAL_OHLCV}")
    full, one, probes = [], [], []
    for _ in range(repeats):
        full.append(engine_run(len(COINS)))
        one.append(engine_run(1))
        probes.append(probe())
    wall10 = [r["wall_s"] for r in full]
    wall1 = [r["wall_s"] for r in one]
    marginal = (statistics.median(wall10) - statistics.median(wall1)) / (len(COINS) - 1)
    steps = sorted({name for r in full for name in r["steps"]}, key=list(full[0]["steps"]).index)
    return {
        "job": f"{len(COINS)} real coins, 1h, 18 windows of 20 d / 5 d, partition {PARTITION}",
        "repeats": repeats,
        "wall_s": _spread(wall10),
        "cpu_s": _spread([r["cpu_s"] for r in full]),
        "load_1m": [round(r["load_1m"], 2) for r in full],
        "steps_s": {n: _spread([r["steps"].get(n, 0.0) for r in full]) for n in steps},
        "one_coin_wall_s": _spread(wall1),
        "one_coin_cpu_s": _spread([r["cpu_s"] for r in one]),
        "marginal_coin_s": marginal,
        "fixed_s": statistics.median(wall1) - marginal,
        "probe": {k: _spread([p[k] for p in probes]) for k in probes[0]},
        "peer_freqai_recorded": FREQAI_RECORDED,
        "target_wall_s": TARGET_WALL_S,
        "runs": {"ten_coins": full, "one_coin": one, "probes": probes},
    }


def print_small_real(out: dict[str, Any]) -> None:
    def mm(spread: dict[str, float]) -> str:
        return f"min {spread['min']:6.1f}  median {spread['median']:6.1f}"

    print(f"small real job: {out['job']}, {out['repeats']} runs, load(1m) {out['load_1m']}")
    print(f"  engine run wall s  {mm(out['wall_s'])}   (target <= {out['target_wall_s']:.0f})")
    print(f"  engine run CPU s   {mm(out['cpu_s'])}   (children included)")
    for name, spread in out["steps_s"].items():
        print(f"    {name:<22} {mm(spread)}")
    print(f"  1-coin run wall s  {mm(out['one_coin_wall_s'])}  CPU {mm(out['one_coin_cpu_s'])}")
    print(
        f"  fixed part ~ {out['fixed_s']:.1f} s (1-coin wall - marginal coin "
        f"{out['marginal_coin_s']:.2f} s)"
    )
    for name, spread in out["probe"].items():
        print(f"    probe {name:<18} {mm(spread)}")
    peer = out["peer_freqai_recorded"]
    print(
        f"  peer: freqtrade FreqAI {peer['wall_s']} s wall / {peer['cpu_s']} s CPU "
        "(recorded on this machine, STACK_NOTES.md; not rerun here)"
    )
