"""Issue 14: close -> decision for every coin, streaming feed vs REST polling, against the
local Binance simulator (``hamilton_exec.exchange_sim``) at real time (``time_scale=1``).

* **Streaming lane**: :class:`hamilton_exec.market_data.stream_feed.StreamingFeed` (ccxt.pro, one
  ``watch_ohlcv_for_symbols`` for all coins + bookTicker), client from ``build_ccxt_client(...,
  streaming=True)`` with ccxt's defaults; REST parts (fills) through a ``CcxtSource`` with ccxt's
  rate limiter ON as in production. Per bar: close -> tick emitted (all coins' final bars in
  hand) and close -> end of ``engine.on_tick`` (all decisions). The first tick (the bar that
  closed before the subscription: REST-filled, or empty when the set-up ended past
  ``bar_grace_s`` after its close) is reported apart and excluded from the figures.
* **Polling lane**: :class:`hamilton_exec.market_data.feeds.PollingFeed` over a ``CcxtSource`` with
ccxt's
  rate limiter ON (binance ``rateLimit`` x the klines cost), the coins one after another; one
  bar close; stopped at ``--poll-limit-s`` with the count fetched (extrapolated from the
  measured per-request time).
* Memory: RSS of this process before the feed starts and after the bars (and the simulator's).

The engine: ``--coins`` coins (``C000/USDT`` ...), timeframe 1m, PaperBroker, a release with
three regime XGBoost models per coin (bench/hamilton_live.py's ``served_release``), warmed with
the simulator's own 1m klines (``history_bars`` bars, fetched with the limiter OFF in threads:
warm-up only). The simulator runs in its own process (``python -c`` driver).

Usage: ``.venv/bin/python bench/stream_feed.py [--coins 400] [--bars 3] [--history-bars 300]
[--poll-limit-s 120] [--out PATH]``
"""

import argparse
import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import hamilton_live as hl

from hamilton_exec.execution.brokers import PaperBroker
from hamilton_exec.market_data.feeds import PollingFeed
from hamilton_exec.market_data.stream_feed import StreamingFeed
from hamilton_exec.market_data.window import utc_ms
from hamilton_exec.runtime.heap import settle_long_lived_heap
from hamilton_exec.runtime.release_sensor import warm_start
from trading_core.config.models import (
    EngineConfig,
    ExchangeSection,
    MarketDataFeedSection,
)
from trading_core.market.ccxt_source import CcxtSource, build_ccxt_client
from trading_core.market.synthetic import SyntheticMarket
from trading_core.observability.logging import configure_logging

RESULTS = Path(__file__).parent / "results" / "stream_feed.json"
STEP_MS = 60_000
TARGET_S = 1.0

_SIM_DRIVER = r"""
import json, os, sys
from trading_core.observability.logging import configure_logging
configure_logging(fmt="json", level="WARNING", service="exchange-sim",
                  stream=open(os.devnull, "w"))
from hamilton_exec.exchange_sim import SimulatorServer

def reply(data):
    sys.stdout.write("@@" + json.dumps(data) + "\n")
    sys.stdout.flush()

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

setup = json.loads(sys.stdin.readline())
sim = SimulatorServer(symbols=setup["symbols"], seed=setup["seed"], stream_interval_s=1.0,
                      time_scale=1.0)
sim.start()
reply({"base_url": sim.base_url, "pid": os.getpid()})
for line in sys.stdin:
    op = json.loads(line)["op"]
    if op == "rss":
        reply({"rss_mb": rss_mb(), "ws_conns": len(sim.ws.conns)})
    elif op == "stop":
        break
sim.stop()
reply({"stopped": True})
"""


class Sim(hl.SimProcess):
    """The simulator with plain string symbols and a 1 s stream interval, own process."""

    def __init__(self, symbols: list[str], seed: int, log_path: Path) -> None:
        self._log_path = log_path
        self._log = log_path.open("wb")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SIM_DRIVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        hello = self._call({"symbols": symbols, "seed": seed})
        self.base_url, self.pid = hello["base_url"], hello["pid"]

    def info(self) -> dict[str, Any]:
        return self._call({"op": "rss"})


def engine_config(tmp: Path, base_url: str, history_bars: int) -> EngineConfig:
    return EngineConfig.model_validate(
        {
            "engine": {"timeframes": ["1m"]},
            "data": {"exchange": {"name": "binance", "base_url": base_url}},
            "hamilton": {"history_bars": history_bars},
            "training": {
                "model_versioning": {
                    "brain_library_dsn": f"sqlite:///{tmp / 'brain.db'}",
                    "storage_path": str(tmp / "artifacts"),
                }
            },
        }
    )


def close_s(open_ms: int) -> float:
    return (open_ms + STEP_MS) / 1000


async def stream_lane(feed: StreamingFeed, engine: Any, bars: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    gen = feed.ticks()
    try:
        async for tick in gen:
            t_tick = time.time()
            engine.on_tick(tick)
            t_done = time.time()
            c = close_s(tick.open_ms)
            rows.append(
                {
                    "open": utc_ms(tick.open_ms).isoformat(),
                    "first_tick_rest_filled": not rows,
                    "bars_in_tick": len(tick.candles),
                    "books_in_tick": len(tick.books or {}),
                    "close_to_tick_s": t_tick - c,
                    "close_to_decided_s": t_done - c,
                    "on_tick_s": t_done - t_tick,
                }
            )
            r = rows[-1]
            print(
                f"  stream bar {r['open']} bars={r['bars_in_tick']} books={r['books_in_tick']} "
                f"close->tick {r['close_to_tick_s']:.3f}s close->decided "
                f"{r['close_to_decided_s']:.3f}s"
                f"{' (first tick, excluded)' if not rows[1:] else ''}",
                flush=True,
            )
            if len(rows) > bars:
                break
    finally:
        await gen.aclose()
    return rows


async def poll_lane(feed: PollingFeed, engine: Any, limit_s: float) -> dict[str, Any]:
    """One bar close: the bar forming now; stopped after ``limit_s`` past the close."""
    now_ms = int(time.time() * 1000)
    forming = now_ms // STEP_MS * STEP_MS
    feed.next_open_ms = forming
    close = forming + STEP_MS
    while time.time() * 1000 < close:
        await asyncio.sleep(min(0.2, (close - time.time() * 1000) / 1000))
    fetched: list[float] = []
    inner = feed._fetch

    def timed(symbol: str, open_ms: int) -> Any:
        began = time.perf_counter()
        try:
            return inner(symbol, open_ms)
        finally:
            fetched.append(time.perf_counter() - began)

    feed._fetch = timed  # type: ignore[method-assign]
    task = asyncio.create_task(feed._collect(utc_ms(close)))
    try:
        candles = await asyncio.wait_for(task, timeout=limit_s)
    except TimeoutError:
        n = len(fetched)
        per = sum(fetched) / max(n, 1)
        return {
            "complete": False,
            "fetched": n,
            "close_to_tick_s": None,
            "stopped_at_s": limit_s,
            "per_request_s": per,
            "extrapolated_close_to_tick_s": per * len(feed.symbols),
        }
    t_tick = time.time()
    from hamilton_exec.market_data.window import Tick

    engine.on_tick(Tick(forming, candles, datetime.now(UTC)))
    t_done = time.time()
    c = close / 1000
    return {
        "complete": len(candles) == len(feed.symbols),
        "fetched": len(candles),
        "close_to_tick_s": t_tick - c,
        "close_to_decided_s": t_done - c,
        "on_tick_s": t_done - t_tick,
        "per_request_s": sum(fetched) / max(len(fetched), 1),
        "requests": len(fetched),
    }


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    symbols = [f"C{i:03d}/USDT" for i in range(args.coins)]
    sim = Sim(symbols, args.seed, tmp / "sim.log")
    try:
        return _run(args, tmp, sim, symbols)
    finally:
        sim.stop()


def warm_frames(
    exchange: ExchangeSection, symbols: list[str], start: datetime, end: datetime
) -> list[Any]:
    """The simulator's own 1m klines for the warm-up: 4 threads, each with its own client,
    ccxt's rate limiter off (the warm-up only)."""
    sources = []
    for _ in range(4):
        source = CcxtSource(exchange, quote="USDT")
        source.client.enableRateLimit = False
        sources.append(source)

    def fetch(item: tuple[int, str]) -> Any:
        return sources[item[0] % 4].fetch_ohlcv(item[1], "1m", start=start, end=end)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(fetch, enumerate(symbols)))


def _run(  # noqa: PLR0915 - one measured story, step by step
    args: argparse.Namespace, tmp: Path, sim: Sim, symbols: list[str]
) -> dict[str, Any]:
    began_run = time.time()
    out: dict[str, Any] = {
        "coins": len(symbols),
        "machine": f"{os.cpu_count()} cores shared",
        "simulator": "own process (python -c driver), time_scale=1, stream_interval_s=1.0",
        "sim_pid": sim.pid,
    }
    exchange = ExchangeSection(base_url=sim.base_url, timeout_ms=5000)
    config = engine_config(tmp, sim.base_url, args.history_bars)

    # the release: 3 regime models per coin, one artifact trained on a small synthetic market
    t = time.perf_counter()
    syn_cfg = EngineConfig.model_validate({"data": {"synthetic": {"n_coins": 3, "days": 45}}})
    syn = SyntheticMarket(syn_cfg.data.synthetic)
    fit = hl.train_artifact(config, syn, syn.list_symbols()[0], syn.end - timedelta(days=1))
    served = hl.served_release(config, symbols, fit.artifact, hl.bench_release(), "1m")
    out["release_build_s"] = time.perf_counter() - t

    now = datetime.now(UTC)
    engine = hl.new_engine(config, symbols, tmp / "state", broker=PaperBroker(), now=now)
    engine.swap_release(served)

    settings = MarketDataFeedSection()
    rest_source = CcxtSource(exchange, quote="USDT")  # limiter ON (production)
    rate_limit_ms = rest_source.client.rateLimit
    client = build_ccxt_client(exchange, market_types=("spot",), streaming=True)
    feed = StreamingFeed(
        client, rest_source, symbols, "1m", history_bars=args.history_bars, settings=settings
    )

    # warm-up: the simulator's own 1m klines, limiter OFF, 4 threads with their own clients
    t = time.perf_counter()
    end, start = utc_ms(feed.next_open_ms), utc_ms(feed.next_open_ms - args.history_bars * STEP_MS)
    frames = warm_frames(exchange, symbols, start, end)
    histories = dict(zip(symbols, frames, strict=True))
    out["warm_fetch_s"] = time.perf_counter() - t
    out["warm_bars_per_coin"] = min(f.height for f in frames)
    t = time.perf_counter()
    warm_start(engine, histories, btc_history=None, funding={}, memories=True)
    out["warm_start_s"] = time.perf_counter() - t
    del frames, histories
    settle_long_lived_heap("bench_stream_feed", served.id)
    print(
        f"setup {time.time() - began_run:.1f}s (warm fetch {out['warm_fetch_s']:.1f}s, "
        f"warm_start {out['warm_start_s']:.1f}s)",
        flush=True,
    )

    gc.collect()
    out["rss_mb_before_feed"] = hl.rss_mb()
    out["sim_rss_mb_before_feed"] = sim.info()["rss_mb"]
    rows = asyncio.run(stream_lane(feed, engine, args.bars))
    gc.collect()
    out["rss_mb_after_stream_bars"] = hl.rss_mb()
    info = sim.info()
    out["sim_rss_mb_after_stream_bars"] = info["rss_mb"]
    timed = rows[1:]
    out["stream"] = {
        "ccxt_ws_client": "build_ccxt_client(streaming=True), ccxt defaults; REST fills via "
        f"CcxtSource with the limiter ON (rateLimit {rate_limit_ms} ms)",
        "settings": settings.model_dump(),
        "first_tick_rest_filled_excluded": rows[0] if rows else None,
        "bars": timed,
        "max_close_to_tick_s": max((r["close_to_tick_s"] for r in timed), default=None),
        "max_close_to_decided_s": max((r["close_to_decided_s"] for r in timed), default=None),
        "all_coins_every_bar": all(r["bars_in_tick"] == len(symbols) for r in timed),
    }
    out["stream"]["target_met"] = (
        bool(timed)
        and out["stream"]["all_coins_every_bar"]
        and (out["stream"]["max_close_to_decided_s"] <= TARGET_S)
    )
    out["feed_rss_delta_mb"] = out["rss_mb_after_stream_bars"] - out["rss_mb_before_feed"]

    # polling lane: same simulator, same engine, limiter ON
    poll_source = CcxtSource(exchange, quote="USDT")
    poll_source.client.load_markets()
    pfeed = PollingFeed(
        poll_source,
        symbols,
        "1m",
        history_bars=args.history_bars,
        poll_interval_s=5.0,
        grace_s=settings.bar_grace_s,
    )
    poll = asyncio.run(poll_lane(pfeed, engine, args.poll_limit_s))
    poll["ccxt_rate_limiter"] = (
        f"ON (enableRateLimit={poll_source.client.enableRateLimit}, "
        f"rateLimit {poll_source.client.rateLimit} ms x klines cost)"
    )
    poll["target_met"] = bool(poll["complete"]) and poll["close_to_decided_s"] <= TARGET_S
    out["poll"] = poll
    out["rss_mb_end"] = hl.rss_mb()
    out["run_wall_s"] = time.time() - began_run
    return out


def table(r: dict[str, Any]) -> str:
    s, p = r["stream"], r["poll"]
    lines = [
        "| lane | bar | close->tick (s) | close->all decided (s) | coins |",
        "|---|---|---|---|---|",
    ]
    first = s["first_tick_rest_filled_excluded"]
    if first:
        lines.append(
            f"| stream (first tick, excluded) | {first['open'][11:16]} | "
            f"{first['close_to_tick_s']:.3f} | {first['close_to_decided_s']:.3f} | "
            f"{first['bars_in_tick']} |"
        )
    for b in s["bars"]:
        lines.append(
            f"| stream | {b['open'][11:16]} | {b['close_to_tick_s']:.3f} | "
            f"{b['close_to_decided_s']:.3f} | {b['bars_in_tick']} |"
        )
    if s["bars"]:
        lines.append(
            f"| **stream max** | | **{s['max_close_to_tick_s']:.3f}** | "
            f"**{s['max_close_to_decided_s']:.3f}** | |"
        )
    if p["complete"]:
        lines.append(
            f"| REST polling | 1 bar | {p['close_to_tick_s']:.3f} | "
            f"{p['close_to_decided_s']:.3f} | {p['fetched']} |"
        )
    else:
        lines.append(
            f"| REST polling | 1 bar | >{p['stopped_at_s']:.0f} ({p['fetched']} of "
            f"{r['coins']} fetched; ~{p['extrapolated_close_to_tick_s']:.0f} "
            f"extrapolated) | - | {p['fetched']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--coins", type=int, default=400)
    ap.add_argument("--bars", type=int, default=3)
    ap.add_argument("--history-bars", type=int, default=300)
    ap.add_argument("--poll-limit-s", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the logger writes to it until exit
    configure_logging(fmt="json", level="WARNING", service="bench-stream-feed", stream=devnull)
    with tempfile.TemporaryDirectory() as d:
        result = run(args, Path(d))
    result["command"] = " ".join([".venv/bin/python", "bench/stream_feed.py", *sys.argv[1:]])
    print(table(result))
    print(
        f"RSS this process: {result['rss_mb_before_feed']:.0f} MB before feed -> "
        f"{result['rss_mb_after_stream_bars']:.0f} MB after bars "
        f"(+{result['feed_rss_delta_mb']:.1f}); "
        f"simulator {result['sim_rss_mb_after_stream_bars']:.0f} MB"
    )
    print(
        f"stream target met: {result['stream']['target_met']}; poll target met: "
        f"{result['poll']['target_met']}; run {result['run_wall_s']:.0f}s"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    with contextlib.suppress(Exception):
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
