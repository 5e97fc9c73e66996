"""Does the promotion gate tell edge from luck? Three experiments through the real daily DAG.

    python bench/selection.py null  --seeds 1 2 3 4 5 --coins 40      # false promotions
    python bench/selection.py power --strengths 0.25 0.5 1 2 --coins 40   # power curve (+ PNG)
    python bench/selection.py real                                  # held-out real candles

Each day is one real Dagster materialization of the daily assets (ranking -> ohlcv -> training ->
walk-forward -> best_models with the gate) on a Dask LocalCluster, at the default config except
the market (mode, seed, structure strength) and the number of active coins. The figures are read
back from the Brain Library: every key registered that day is a trial; "production" is what the
gate let through. Results go to bench/results/selection_<part>.json (and .png for the curves).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PARTITION = "2026-10-31"


def run_day(env: dict[str, str], *, partition: str = PARTITION) -> dict[str, Any]:
    """One daily run under ``env`` (ENGINE__ overrides); per-key gate figures from the library."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-selection-"))
    saved = dict(os.environ)
    os.environ.update(
        {
            "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": f"sqlite:///{tmp}/brain.db",
            "ENGINE__TRAINING__MODEL_VERSIONING__STORAGE_PATH": str(tmp / "artifacts"),
            "ENGINE__DATA__STORE_PATH": str(tmp / "ohlcv"),
            "ENGINE__TRAINING__DISTRIBUTED__NUM_WORKERS": "2",
            **env,
        }
    )
    try:
        from trading_core.brain import BrainLibrary
        from trading_core.config import load_config

        success, wall = materialize_day(partition)
        library = BrainLibrary.from_config(load_config())
        keys = [_key_row(m) for m in library.list_models()]
        library.close()
        return {"success": success, "wall_s": wall, "keys": keys}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(tmp, ignore_errors=True)


def materialize_day(partition: str) -> tuple[bool, float]:
    """Every daily asset and check of ``partition`` in one Dagster run (ENGINE__ env already
    set): success and wall seconds."""
    import dagster as dg

    from engine_assets.definitions import DAILY_ASSETS, build_resources, defs

    started = time.perf_counter()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*DAILY_ASSETS, *(defs.asset_checks or [])],
            partition_key=partition,
            resources=build_resources(),
            instance=instance,
            raise_on_error=False,
        )
    return result.success, time.perf_counter() - started


def _key_row(model: Any) -> dict[str, Any]:
    gate = (model.validation or {}).get("gate") or {}
    return {
        "key": model.key.slug,
        "regime": model.key.regime,
        "timeframe": model.key.timeframe,
        "stage": model.stage.value,
        "sharpe": model.metrics.get("oos_sharpe"),
        "edge_bps": model.metrics.get("oos_edge_after_cost_bps"),
        "trades": model.metrics.get("oos_n_trades"),
        "p_value": gate.get("p_value"),
        "p_adjusted": gate.get("p_adjusted"),
        "dsr": gate.get("dsr"),
        "passed": gate.get("passed"),
        "reason": gate.get("reason"),
    }


def _summary(day: dict[str, Any]) -> dict[str, Any]:
    keys = day["keys"]
    production = [k for k in keys if k["stage"] == "production"]
    naive = [k for k in keys if (k["sharpe"] or 0) > 0 and k["trades"] and k["trades"] >= 20]
    p_values = [k["p_value"] for k in keys if k["p_value"] is not None]
    return {
        "keys": len(keys),
        "production": len(production),
        "share": len(production) / max(len(keys), 1),
        "positive_sharpe_20_trades": len(naive),
        "p_below_0.05": sum(p <= 0.05 for p in p_values),
        "tested": len(p_values),
        "best_sharpe": max((k["sharpe"] or -99 for k in keys), default=None),
        "wall_s": day["wall_s"],
    }


def null_experiment(seeds: list[int], coins: int) -> dict[str, Any]:
    rows = []
    for seed in seeds:
        day = run_day(
            {
                "ENGINE__DATA__SYNTHETIC__MODE": "no_edge",
                "ENGINE__DATA__SYNTHETIC__SEED": str(seed),
                "ENGINE__ENGINE__ACTIVE_COINS": str(coins),
            }
        )
        row = {"seed": seed, **_summary(day)}
        print(json.dumps(row), flush=True)
        rows.append({**row, "key_rows": day["keys"]})
    return {"coins": coins, "rows": rows}


def power_experiment(strengths: list[float], coins: int, seed: int) -> dict[str, Any]:
    rows = []
    for strength in strengths:
        day = run_day(
            {
                "ENGINE__DATA__SYNTHETIC__STRUCTURE_STRENGTH": str(strength),
                "ENGINE__DATA__SYNTHETIC__SEED": str(seed),
                "ENGINE__ENGINE__ACTIVE_COINS": str(coins),
            }
        )
        by_regime = {}
        for regime in ("TREND", "RANGE", "PANIC"):
            keys = [k for k in day["keys"] if k["regime"] == regime]
            won = sum(k["stage"] == "production" for k in keys)
            by_regime[regime] = {"keys": len(keys), "production": won}
        row = {"strength": strength, **_summary(day), "by_regime": by_regime}
        print(json.dumps(row), flush=True)
        rows.append({**row, "key_rows": day["keys"]})
    return {"coins": coins, "seed": seed, "rows": rows}


def _power_png(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    strengths = [r["strength"] for r in result["rows"]]
    for regime in ("TREND", "RANGE"):
        share = [
            r["by_regime"][regime]["production"] / max(r["by_regime"][regime]["keys"], 1)
            for r in result["rows"]
        ]
        ax.plot(strengths, share, marker="o", label=regime)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("structure_strength")
    ax.set_ylabel("share of keys reaching production")
    ax.set_title(f"Gate power, {result['coins']} coins x 1h+4h, seed {result['seed']}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["null", "power"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--coins", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.part == "null":
        result = null_experiment(args.seeds, args.coins)
    else:
        result = power_experiment(args.strengths, args.coins, args.seed)
        _power_png(result, RESULTS / "selection_power.png")
    (RESULTS / f"selection_{args.part}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
