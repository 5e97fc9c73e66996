"""Time and peak memory to generate the default synthetic market: 450 coins x 1 year of 1h bars.

Peer in the same run: the cheapest possible generator of the same arrays, a plain i.i.d.
Gaussian random walk with open/high/low/close/volume (numpy, no regimes, no recursion), so the
figure shows what the regime model, Student-t shocks, momentum/reversion loop and candle model
cost on top of the floor. Also times turning every coin into a validated polars frame and the
universe snapshot. Each stage runs in a fresh process: wall time, and peak memory as the growth
of the process's max RSS over its size after imports (numpy and polars buffers alike).

Run: .venv/bin/python bench/market_synthetic.py
"""

import multiprocessing
import resource
import time
from datetime import timedelta

import numpy as np

from trading_core.config.models import SyntheticMarketSection
from trading_core.market.synthetic import SyntheticMarket

N_COINS, DAYS = 450, 365


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _market(mode: str) -> SyntheticMarket:
    return SyntheticMarket(SyntheticMarketSection(n_coins=N_COINS, days=DAYS, mode=mode))


def _stage(name: str, queue: "multiprocessing.Queue[tuple[float, float]]") -> None:
    prepared = None
    if name in ("frames", "snapshot"):
        prepared = _market("structured")
        _ = prepared.market  # simulated before the clock starts
    base_rss = _max_rss_mib()
    start = time.perf_counter()
    if name == "peer":
        iid_random_walk_peer()
    elif name in ("structured", "no_edge"):
        _ = _market(name).market
    elif name == "frames" and prepared is not None:
        first = prepared.end - timedelta(days=DAYS)
        for symbol in prepared.list_symbols():
            prepared.fetch_ohlcv(symbol, "1h", start=first, end=prepared.end)
    elif name == "snapshot" and prepared is not None:
        prepared.universe_snapshot(prepared.end)
    queue.put((time.perf_counter() - start, _max_rss_mib() - base_rss))


def measure(label: str, name: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[tuple[float, float]] = ctx.Queue()
    proc = ctx.Process(target=_stage, args=(name, queue))
    proc.start()
    elapsed_s, peak_mib = queue.get(timeout=600)
    proc.join()
    print(f"{label:<62} {elapsed_s:6.2f} s   +{peak_mib:7.0f} MiB peak RSS")


def iid_random_walk_peer() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(7)
    shape = (N_COINS, DAYS * 24)
    log_close = np.cumsum(0.01 * rng.standard_normal(shape), axis=1)
    close = np.exp(log_close)
    open_ = np.exp(log_close - 0.01 * rng.standard_normal(shape))
    high = np.maximum(open_, close) * np.exp(0.005 * np.abs(rng.standard_normal(shape)))
    low = np.minimum(open_, close) * np.exp(-0.005 * np.abs(rng.standard_normal(shape)))
    volume = np.exp(rng.standard_normal(shape))
    return open_, high, low, close, volume


def main() -> None:
    candles = N_COINS * DAYS * 24
    print(f"synthetic market: {N_COINS} coins x {DAYS} days of 1h bars = {candles:,} candles")
    measure("peer: i.i.d. Gaussian random walk, same array shapes", "peer")
    measure("SyntheticMarket.market, structured (regimes, t shocks, loop)", "structured")
    measure("SyntheticMarket.market, no_edge (regimes, t shocks, no loop)", "no_edge")
    measure("all 450 coins -> validated 1h polars frames", "frames")
    measure("universe_snapshot(end)", "snapshot")


if __name__ == "__main__":
    main()
