"""How well the cost model's one-way slippage predicts a market order's real fill, with and
without the live book's levels (issue 14: "depth for the slippage estimate where available").

Against the local Binance simulator (spot, its matching engine fills market orders through its
book): for each coin and order size, read the book (``fetch_order_book``, 20 levels), predict the
fill's distance from mid in bps two ways, send the market order through ccxt and compare with
the realised average price:

* ``book``: half-spread + ``costs.kernel.book_walk_bps`` over the ask (buy) / bid (sell) levels,
  what Hamilton uses when the levels can fill the order;
* ``model``: half-spread + the square-root law (``sqrt_impact_bps``) with the default
  ``impact_factor`` / ``participation_rate``, the last closed 1m bar's volume and the standard
  deviation of the last 60 1m returns, what it used before (and still uses without a book).

Sizes are multiples of the notional the simulator quotes per level (``level_notional``): 0.5x
(inside the touch), 3x and 10x (walking several levels). Buys then sells back. The book can
move between the read and the fill (the synthetic mid moves continuously; the order travels
over HTTP): that shows up as noise in both columns alike.

Usage: ``.venv/bin/python bench/cost_book_walk.py [--coins 20] [--seed 3]``; results in
``bench/results/cost_book_walk.json``.
"""

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from hamilton_exec.exchange_sim import EngineConfig, SimulatorServer
from trading_core.config.models import CostModelSection, ExchangeSection
from trading_core.costs.kernel import book_walk_bps, sqrt_impact_bps
from trading_core.market.ccxt_source import build_ccxt_client

RESULTS = Path(__file__).parent / "results" / "cost_book_walk.json"
SIZES = (0.5, 3.0, 10.0)  # x level_notional


def _model_bps(client: Any, symbol: str, qty: float, section: CostModelSection) -> float:
    bars = client.fetch_ohlcv(symbol, "1m", limit=62)[:-1]  # the forming bar left out
    closes = np.array([b[4] for b in bars], dtype=np.float64)
    vol_bps = float(np.std(np.diff(np.log(closes)))) * 1e4
    slip = section.slippage_model
    return sqrt_impact_bps(
        qty, float(bars[-1][5]), vol_bps, slip.impact_factor, slip.participation_rate
    )


def _one(
    client: Any, symbol: str, side: str, notional: float, section: CostModelSection
) -> dict[str, Any]:
    book = client.fetch_order_book(symbol, limit=20)
    bid, ask = book["bids"][0][0], book["asks"][0][0]
    mid = 0.5 * (bid + ask)
    qty = float(client.amount_to_precision(symbol, notional / mid))
    levels = np.array(book["asks"] if side == "buy" else book["bids"], dtype=np.float64)[:, :2]
    half_spread_bps = (ask - bid) / mid / 2 * 1e4
    walk = book_walk_bps(qty, levels[:, 0], levels[:, 1], mid)
    model = _model_bps(client, symbol, qty, section)
    order = client.create_order(symbol, "market", side, qty)
    filled = client.fetch_order(order["id"], symbol)
    avg = float(filled["average"])
    realised = (avg - mid) / mid * 1e4 * (1 if side == "buy" else -1)
    return {
        "symbol": symbol, "side": side, "notional": notional, "qty": qty,
        "realised_bps": realised,
        "book_bps": half_spread_bps + walk if math.isfinite(walk) else None,
        "model_bps": half_spread_bps + model,
    }  # fmt: skip


def _summary(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    errors = [r["realised_bps"] - r[key] for r in rows if r[key] is not None]
    within = sum(abs(e) <= 0.5 for e in errors)
    return {
        "n": len(errors),
        "mean_error_bps": statistics.fmean(errors),
        "sd_error_bps": statistics.stdev(errors) if len(errors) > 1 else 0.0,
        "mean_abs_error_bps": statistics.fmean(abs(e) for e in errors),
        "within_0_5_bps": within / len(errors),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--coins", type=int, default=20)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    symbols = [f"W{i:02d}/USDT" for i in range(args.coins)]
    engine = EngineConfig()
    section = CostModelSection()
    started = time.perf_counter()
    balances = {"USDT": 1e9, **{s.split("/")[0]: 1e9 for s in symbols}}
    with SimulatorServer(
        symbols=symbols, balances=balances, api_key="K",
        api_secret="S",  # noqa: S106 - the simulator's local key
        seed=args.seed, config=engine,
    ) as sim:  # fmt: skip
        client = build_ccxt_client(
            ExchangeSection(base_url=sim.base_url, api_key=SecretStr("K"),
                            api_secret=SecretStr("S"), timeout_ms=5000),
            market_types=("spot",),
        )  # fmt: skip
        client.enableRateLimit = False
        client.load_markets()
        rows = [
            _one(client, symbol, side, size * engine.level_notional, section)
            for symbol in symbols
            for size in SIZES
            for side in ("buy", "sell")
        ]
    by_size = {
        f"{size}x": {
            key: _summary([r for r in rows if r["notional"] == size * engine.level_notional], key)
            for key in ("book_bps", "model_bps")
        }
        for size in SIZES
    }
    result = {
        "coins": args.coins, "seed": args.seed, "orders": len(rows),
        "level_notional_usd": engine.level_notional, "levels": engine.levels,
        "book": _summary(rows, "book_bps"), "model": _summary(rows, "model_bps"),
        "by_size": by_size, "wall_s": time.perf_counter() - started, "rows": rows,
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"{len(rows)} market orders on {args.coins} coins, realised minus predicted (bps):")
    print("| size | book walk: mean ± sd (within 0.5 bps) | square-root law: mean ± sd |")
    print("|---|---|---|")
    for size, parts in by_size.items():
        b, m = parts["book_bps"], parts["model_bps"]
        print(
            f"| {size} | {b['mean_error_bps']:+.2f} ± {b['sd_error_bps']:.2f} "
            f"({b['within_0_5_bps']:.0%}, n={b['n']}) | "
            f"{m['mean_error_bps']:+.2f} ± {m['sd_error_bps']:.2f} |"
        )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
