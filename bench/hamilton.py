"""Hamilton per-bar decision latency, in process, on the synthetic market.

Figures:
* per coin: one tick of a one-coin engine (prepare + learned engine + consensus + cost + risk +
  event), p50/p99 over ``--bars`` bars;
* one bar across ``--coins`` coins: one tick of an engine following them all (the batched
  preparation of every coin's newest bar, then each coin's decision);
* the peer, in the same run: the naive path, ``prepare_coin_frame`` on each coin's
  ``history_bars`` window per bar (what a per-bar recompute with the training code costs).

Targets (issue 5): p99 <= 1 ms per coin; 400 coins <= 100 ms per bar.
Usage: ``.venv/bin/python bench/hamilton.py [--coins 400] [--bars 48]``; writes
``bench/results/hamilton.json``.
"""

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from hamilton_exec.engine import HamiltonEngine, Tick
from hamilton_exec.event_store import EventSink
from hamilton_exec.metrics import HamiltonMetrics
from hamilton_exec.settings import HamiltonSettings
from hamilton_exec.window import candles_of
from trading_core.config.models import EngineConfig
from trading_core.market.synthetic import SyntheticMarket
from trading_core.training.dataset import prepare_coin_frame

RESULTS = Path(__file__).parent / "results" / "hamilton.json"


def _engine(config: EngineConfig, symbols: list[str], tmp: Path) -> HamiltonEngine:
    settings = HamiltonSettings.from_config(
        config, symbols=tuple(symbols), state_dir=tmp, metrics_port=None, health_port=None
    )
    sink = EventSink(None, tmp / "spool.jsonl")
    return HamiltonEngine(
        config,
        settings,
        symbols,
        sink=sink,
        metrics=HamiltonMetrics(venue="binance"),
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _ticks(source: SyntheticMarket, symbols: list[str], start: datetime, bars: int) -> list[Tick]:
    frames = {
        s: source.fetch_ohlcv(s, "1h", start=start, end=start + timedelta(hours=bars))
        for s in symbols
    }
    candles = {s: {c.open_ms: c for c in candles_of(f)} for s, f in frames.items()}
    times = sorted({t for c in candles.values() for t in c})
    return [
        Tick(
            t,
            {s: c[t] for s, c in candles.items() if t in c},
            datetime.fromtimestamp(t / 1000 + 3600, tz=UTC),
        )
        for t in times
    ]


def _warm(engine: HamiltonEngine, source: SyntheticMarket, start: datetime) -> None:
    history = start - timedelta(hours=engine.settings.history_bars)
    for symbol, window in engine.windows.items():
        window.extend(source.fetch_ohlcv(symbol, "1h", start=history, end=start))
    if engine.btc_symbol not in engine.windows:
        engine.btc_window.extend(
            source.fetch_ohlcv(engine.btc_symbol, "1h", start=history, end=start)
        )


def _clear(engine: HamiltonEngine) -> None:
    engine.sink._queue.clear()


def run(coins: int, bars: int, tmp: Path) -> dict[str, Any]:
    config = EngineConfig.model_validate(
        {"data": {"synthetic": {"n_coins": coins + 30, "days": 45}}}
    )
    source = SyntheticMarket(config.data.synthetic)
    start = source.end - timedelta(hours=bars)
    full = [
        s
        for s in source.list_symbols()
        if source.fetch_ohlcv(s, "1h", start=start - timedelta(hours=800), end=source.end).height
        == 800 + bars
    ][:coins]
    ticks_one = _ticks(source, full[:1], start, bars)
    one = _engine(config, full[:1], tmp / "one")
    _warm(one, source, start)
    per_coin_ms = []
    for tick in ticks_one:
        began = time.perf_counter()
        one.on_tick(tick)
        per_coin_ms.append((time.perf_counter() - began) * 1e3)
        _clear(one)
    many = _engine(config, full, tmp / "many")
    _warm(many, source, start)
    many_ms = []
    for tick in _ticks(source, full, start, min(bars, 6)):
        began = time.perf_counter()
        many.on_tick(tick)
        many_ms.append((time.perf_counter() - began) * 1e3)
        _clear(many)
    peer_ms = []
    detection = config.regime_gates.detection
    for symbol in full[:5]:
        window = source.fetch_ohlcv(symbol, "1h", start=start - timedelta(hours=800), end=start)
        began = time.perf_counter()
        prepare_coin_frame(symbol, "1h", window, detection=detection, label_horizon_bars=4)
        peer_ms.append((time.perf_counter() - began) * 1e3)
    return {
        "coins": len(full),
        "bars": bars,
        "per_coin_tick_ms": {
            "p50": float(np.percentile(per_coin_ms, 50)),
            "p99": float(np.percentile(per_coin_ms, 99)),
        },
        "all_coins_tick_ms": {"p50": float(np.percentile(many_ms, 50)), "max": float(max(many_ms))},
        "all_coins_per_coin_ms": float(np.percentile(many_ms, 50)) / len(full),
        "peer_prepare_coin_frame_800_ms": {"p50": float(np.percentile(peer_ms, 50))},
        "peer_all_coins_estimate_ms": float(np.percentile(peer_ms, 50)) * len(full),
        "targets": {"per_coin_p99_ms": 1.0, "all_coins_ms": 100.0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=400)
    parser.add_argument("--bars", type=int, default=48)
    args = parser.parse_args()
    import logging
    import tempfile

    import structlog

    # the per-decision log line is not part of the decision's latency
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    with tempfile.TemporaryDirectory() as tmp:
        figures = run(args.coins, args.bars, Path(tmp))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
