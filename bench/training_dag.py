"""The daily training DAG on the synthetic market: scaling, orchestration overhead, fit efficiency
and Dask against a sequential loop.

    python bench/training_dag.py --coins 25 50 100 200 400      # full sweep (long)
    python bench/training_dag.py --coins 25 --skip-peers        # quick
    python bench/training_dag.py --coins 400 --skip-peers       # + the external-cluster line
    python bench/training_dag.py --small-real                   # start-up, 10 real coins

At the sizes in --external-coins (default 400) the same run goes once more through an external
cluster (``dask scheduler`` + two ``dask worker`` processes) and prints next to the LocalCluster.

Prints a table per part and writes bench/results/training_dag.json and training_scaling.png.
Every figure is measured in this run; peers run on the same matrices and jobs.
"""

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PARTITION = "2026-10-31"
# Every synthetic coin must be eligible to reach 400 active coins (the seed's filters keep ~127).
WIDE_UNIVERSE = {
    "ENGINE__COIN_SELECTION__MIN_DAILY_VOLUME_USD": "0",
    "ENGINE__COIN_SELECTION__MAX_SPREAD_BPS": "100000",
    "ENGINE__COIN_SELECTION__MIN_AGE_DAYS": "0",
    "ENGINE__TRAINING__DISTRIBUTED__NUM_WORKERS": "2",
}


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def _env_for(tmp: Path, coins: int) -> dict[str, str]:
    return {
        **WIDE_UNIVERSE,
        "ENGINE__ENGINE__ACTIVE_COINS": str(coins),
        "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": f"sqlite:///{tmp}/brain.db",
        "ENGINE__TRAINING__MODEL_VERSIONING__STORAGE_PATH": str(tmp / "artifacts"),
        "ENGINE__DATA__STORE_PATH": str(tmp / "ohlcv"),
    }


def run_dag(coins: int) -> dict[str, Any]:
    """One full daily run (all daily assets in ONE Dagster run, Dask LocalCluster 2 x 1)."""
    import dagster as dg

    tmp = Path(tempfile.mkdtemp(prefix=f"bench-dag-{coins}-"))
    saved = dict(os.environ)
    os.environ.update(_env_for(tmp, coins))
    try:
        from engine_assets.definitions import DAILY_ASSETS, build_resources, defs

        started = time.perf_counter()
        with dg.instance_for_test() as instance:
            result = dg.materialize(
                [*DAILY_ASSETS, *(defs.asset_checks or [])],
                partition_key=PARTITION,
                resources=build_resources(),
                instance=instance,
            )
        wall = time.perf_counter() - started
        meta = {
            name: {
                k: v.value
                for k, v in result.asset_materializations_for_node(name)[0].metadata.items()
            }
            for name in ("trained_models", "walk_forward_metrics")
        }
        fits, fit_s = _fit_totals(tmp)
        return {
            "coins": coins,
            "success": result.success,
            "wall_s": wall,
            "train_step_s": meta["trained_models"]["wall_seconds"],
            "train_step_sum_fit_s": meta["trained_models"]["sum_fit_seconds"],
            "walk_forward_step_s": meta["walk_forward_metrics"]["wall_seconds"],
            "models_trained": meta["trained_models"]["models_trained"],
            "fits": fits,
            "fits_per_s": fits / wall,
            "sum_fit_s": fit_s,
            "orchestration_overhead": wall / (fit_s / 2.0) - 1.0,
            "peak_rss_mb": _peak_rss_mb(),
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(tmp, ignore_errors=True)


def run_dag_external(coins: int, local: dict[str, Any] | None) -> dict[str, Any]:
    """The same daily run through an external cluster (issue 13): a ``dask scheduler`` and two
    ``dask worker --nthreads 1`` processes on loopback (tests/integration/dask_servers.py), joined
    through ``training.distributed.scheduler_address``. Printed next to the LocalCluster row of
    the same run: the difference is what the real cluster costs (worker start-up and first
    imports are paid before the clock starts, as a running cluster would have)."""
    from tests.integration.dask_servers import dask_servers

    base = Path(tempfile.mkdtemp(prefix=f"bench-dask-ext-{coins}-"))
    try:
        with dask_servers(base, n_workers=2, nthreads=1) as servers:
            with servers.client() as client:  # warm both workers' imports (not timed)
                client.run(_warm_imports)
            os.environ["ENGINE__TRAINING__DISTRIBUTED__SCHEDULER_ADDRESS"] = servers.address
            try:
                row = run_dag(coins)
            finally:
                os.environ.pop("ENGINE__TRAINING__DISTRIBUTED__SCHEDULER_ADDRESS", None)
            with servers.client() as client:
                row["tasks_per_worker"] = sorted(client.run(_executed_count).values())
    finally:
        shutil.rmtree(base, ignore_errors=True)
    row["cluster"] = "external: dask scheduler + 2 dask worker processes (1 thread each)"
    if local is not None:
        row["local_wall_s"] = local["wall_s"]
        row["wall_vs_local"] = row["wall_s"] / local["wall_s"] - 1.0
    return row


def _warm_imports() -> None:
    import importlib

    for module in ("trading_core.training.train", "trading_core.training.evaluate"):
        importlib.import_module(module)


def _executed_count(dask_worker: Any) -> int:
    return int(dask_worker.state.executed_count)


def _print_external(row: dict[str, Any]) -> None:
    versus = (
        f"  vs LocalCluster {row['local_wall_s']:7.1f} s ({row['wall_vs_local']:+.1%})"
        if "local_wall_s" in row
        else ""
    )
    print(
        f"{row['coins']:4d} coins, external scheduler + 2 workers: wall {row['wall_s']:7.1f} s  "
        f"train {row['train_step_s']:6.1f} s  walk-forward {row['walk_forward_step_s']:6.1f} s  "
        f"fits {row['fits']:6d}  {row['fits_per_s']:5.1f} fits/s{versus}  "
        f"tasks/worker {row['tasks_per_worker']}",
        flush=True,
    )


def _fit_totals(tmp: Path) -> tuple[int, float]:
    """Final fits + walk-forward window fits and their pure fit seconds, from the Brain Library."""
    from trading_core.brain import BrainLibrary

    library = BrainLibrary(f"sqlite:///{tmp}/brain.db", tmp / "artifacts")
    fits, seconds = 0, 0.0
    for model in library.list_models():
        fits += 1
        seconds += float(model.metrics.get("fit_seconds", 0.0))
        for window in (model.validation or {}).get("windows", []):
            if window.get("usable"):
                fits += 1
                seconds += float(window.get("fit_s") or 0.0)
    library.close()
    return fits, seconds


def fit_efficiency(n_coins: int = 4) -> dict[str, Any]:
    """fit_forward_return_model against bare xgb.train on identical matrices and params."""
    import numpy as np
    import xgboost as xgb

    from trading_core.config import load_config
    from trading_core.market.synthetic import SyntheticMarket
    from trading_core.training.dataset import prepare_coin_frame
    from trading_core.training.model import fit_forward_return_model, xgb_params

    config = load_config(env={})
    market = SyntheticMarket(config.data.synthetic)
    end = datetime(2026, 11, 1, tzinfo=UTC)
    start = datetime(2025, 11, 1, tzinfo=UTC)
    matrices = []
    for symbol in market.list_symbols()[:n_coins]:
        frame = prepare_coin_frame(
            symbol,
            "1h",
            market.fetch_ohlcv(symbol, "1h", start=start, end=end),
            detection=config.regime_gates.detection,
            label_horizon_bars=4,
        )
        for code in (0, 1, 2):
            rows = np.flatnonzero(frame.trainable(code))
            if rows.size >= 300:
                matrices.append((frame.features[rows], frame.label_bps[rows], frame.feature_names))
    section = config.training.model
    params = xgb_params(section, device="cpu")
    work = sum(x.shape[0] * x.shape[1] * section.n_estimators for x, _, _ in matrices)

    def ours() -> None:
        for x, y, names in matrices:
            fit_forward_return_model(x, y, names, section)

    def bare() -> None:
        for x, y, _ in matrices:
            xgb.train(
                params, xgb.DMatrix(x, label=y, nthread=section.nthread), section.n_estimators
            )

    ours_s = min(_timed(ours) for _ in range(3))
    bare_s = min(_timed(bare) for _ in range(3))
    return {
        "models": len(matrices),
        "ours_rft_per_s": work / ours_s,
        "bare_xgb_rft_per_s": work / bare_s,
        "ratio": bare_s / ours_s,
    }


def dask_vs_loop(n_coins: int = 24) -> dict[str, Any]:
    """train_coin then validate_coin for n_coins x 1h (the DAG's two Dask steps): a plain loop
    against run_jobs on LocalCluster(2 x 1)."""
    from distributed import get_task_stream

    from trading_core.config import load_config
    from trading_core.market.parquet_store import ParquetStore
    from trading_core.market.synthetic import SyntheticMarket
    from trading_core.training.cluster import open_client, plan_cluster
    from trading_core.training.distributed import run_jobs
    from trading_core.training.evaluate import validate_coin
    from trading_core.training.jobs import CoinJob
    from trading_core.training.train import train_coin

    tmp = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    config = load_config(env={})
    market = SyntheticMarket(config.data.synthetic)
    end = datetime(2026, 11, 1, tzinfo=UTC)
    start = datetime(2025, 11, 1, tzinfo=UTC)
    store = ParquetStore(tmp)
    symbols = market.list_symbols()[:n_coins]
    for symbol in symbols:
        store.append(symbol, "1h", market.fetch_ohlcv(symbol, "1h", start=start, end=end))
    jobs = [
        CoinJob(
            symbol=s,
            timeframe="1h",
            as_of=end,
            partition_date=PARTITION,
            store_root=str(tmp),
            config=config,
            regimes=("TREND", "RANGE", "PANIC"),
        )
        for s in symbols
    ]

    def both(job: CoinJob) -> None:
        train_coin(job)
        validate_coin(job)

    loop_s = _timed(lambda: [both(job) for job in jobs])
    plan = plan_cluster(
        config.training.distributed.model_copy(update={"num_workers": 2, "threads_per_worker": 1}),
        gpu_count=0,
        cpu_count=os.cpu_count() or 1,
    )
    with open_client(plan) as client:  # the DAG's own cluster (LocalCluster 2 x 1)
        for fn in (train_coin, validate_coin):  # warm the workers' imports and numba caches
            run_jobs(
                client,
                jobs[:2],
                fn,
                key_of=lambda j: j.key,
                max_in_flight=2,
                timeout_s=600,
                retry_attempts=0,
            )
        with get_task_stream(client) as stream:
            dask_s = _timed(
                lambda: [
                    run_jobs(
                        client,
                        jobs,
                        fn,
                        key_of=lambda j: j.key,
                        max_in_flight=4,
                        timeout_s=600,
                        retry_attempts=0,
                    )
                    for fn in (train_coin, validate_coin)
                ]
            )
    shutil.rmtree(tmp, ignore_errors=True)
    busy_s = sum(
        part["stop"] - part["start"]
        for task in stream.data
        for part in task["startstops"]
        if part["action"] == "compute"
    )
    return {
        "jobs": len(jobs),
        "loop_s": loop_s,
        "dask_2_workers_s": dask_s,
        "speedup": loop_s / dask_s,
        # what the workers spent computing, against the loop and against 2 x the Dask wall: an
        # idle or slow worker shows in the busy fraction, a loop that already used both cores
        # (polars' own threads) in loop_over_task_compute
        "task_compute_s": busy_s,
        "worker_busy_fraction": busy_s / (2.0 * dask_s),
        "loop_over_task_compute": loop_s / busy_s,
    }


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_small_real(repeats: int) -> None:
    """bench/small_real.py: its own results file, so the sweep's JSON is left as it is."""
    from bench.small_real import print_small_real, small_real

    RESULTS.mkdir(exist_ok=True)
    out = small_real(repeats)
    print_small_real(out)
    (RESULTS / "training_small_real.json").write_text(json.dumps(out, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--coins", type=int, nargs="+", default=[25, 50, 100, 200, 400])
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument(
        "--external-coins",
        type=int,
        nargs="*",
        default=[400],
        help="sizes of --coins also run through an external dask scheduler + 2 workers",
    )
    parser.add_argument(
        "--peers-only", action="store_true", help="rerun the peers, keep the recorded sweep"
    )
    parser.add_argument(
        "--small-real",
        action="store_true",
        help="only `engine run` on 10 real coins (start-up broken out, against FreqAI)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per --small-real figure")
    args = parser.parse_args()
    if args.small_real:
        run_small_real(args.repeats)
        return
    RESULTS.mkdir(exist_ok=True)
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "scaling": []}
    if args.peers_only:
        out["scaling"] = json.loads((RESULTS / "training_dag.json").read_text())["scaling"]
        args.coins = []
    if not args.skip_peers:
        out["fit_efficiency"] = fit_efficiency()
        print("fit efficiency:", json.dumps(out["fit_efficiency"], indent=1))
        out["dask_vs_loop"] = dask_vs_loop()
        print("dask vs loop:", json.dumps(out["dask_vs_loop"], indent=1))
        if args.peers_only:
            (RESULTS / "training_dag.json").write_text(json.dumps(out, indent=2))
    for coins in args.coins:
        row = run_dag(coins)
        out["scaling"].append(row)
        print(
            f"{coins:4d} coins: wall {row['wall_s']:7.1f} s  train {row['train_step_s']:6.1f} s  "
            f"walk-forward {row['walk_forward_step_s']:6.1f} s  fits {row['fits']:6d}  "
            f"{row['fits_per_s']:5.1f} fits/s  overhead {row['orchestration_overhead']:+.0%}  "
            f"peak {row['peak_rss_mb']:.0f} MiB",
            flush=True,
        )
        (RESULTS / "training_dag.json").write_text(json.dumps(out, indent=2))
        if coins in args.external_coins:
            external = run_dag_external(coins, row)
            out.setdefault("external", []).append(external)
            _print_external(external)
            (RESULTS / "training_dag.json").write_text(json.dumps(out, indent=2))
    if len(out["scaling"]) > 1:
        from trading_core.reporting import line_plot_png

        x = [r["coins"] for r in out["scaling"]]
        png = line_plot_png(
            x,
            {"wall time (s)": [r["wall_s"] for r in out["scaling"]]},
            title="Daily DAG wall time, 2 timeframes, 2 workers",
            xlabel="active coins",
            ylabel="seconds",
        )
        (RESULTS / "training_scaling.png").write_bytes(png)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
