"""Hamilton per-bar decision latency, in process, on the synthetic market.

Figures (each with its peer measured in the same run):

* per coin: one tick of a one-coin engine (prepare + learned engine + consensus + cost + risk +
  event + metrics), p50/p99 over ``--bars`` bars; peer: the same engine on the polars
  reference path (``prepare_newest_bars``);
* one bar across ``--coins`` coins: one tick of an engine following them all, no release
  (the learned engine abstains); peer: the reference path;
* the same with a release: every coin with its own three regime models (XGBoost boosters
  loaded per coin from one trained artifact per regime, so the work per coin is the real
  one); peer: the fast path with every booster predicted by XGBoost itself (no flattened
  forests). The release swap (flattening every booster) is timed too, and the same run again
  after ``gc.freeze()`` as the service does (``hamilton_exec.runtime.heap``: a full collection of
  the ~0.5 M long-lived objects costs ~150 ms; it is what the p99 of the unfrozen run shows);
* ``prepare_coin_frame`` on an 800-bar window: a per-bar recompute with the training code.

Targets (issue 5): p99 <= 1 ms per coin; 400 coins <= 100 ms per bar.
Usage: ``.venv/bin/python bench/hamilton.py [--coins 400] [--bars 48]``; writes
``bench/results/hamilton.json``.
"""

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from hamilton_exec.accounting.event_store import EventSink
from hamilton_exec.market_data.window import Tick, candles_of
from hamilton_exec.runtime.heap import settle_long_lived_heap
from hamilton_exec.settings import HamiltonSettings
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from hamilton_exec.tick.hamilton_engine import HamiltonEngine
from hamilton_exec.tick.served_release import CoinModels, ServedRelease, neutral_tables
from trading_core.brain.records import Release
from trading_core.config.models import EngineConfig
from trading_core.market.synthetic import SyntheticMarket
from trading_core.regime import RegimeGates
from trading_core.training.dataset import prepare_coin_frame
from trading_core.training.model import fit_forward_return_model, load_booster
from trading_core.training.predictor import RegimeModelPredictor
from trading_core.types import REGIME_CODES, Regime

RESULTS = Path(__file__).parent / "results" / "hamilton.json"
HISTORY = 800


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


def _run_ticks(engine: HamiltonEngine, ticks: list[Tick]) -> list[float]:
    """Milliseconds per tick; the first tick (which builds the regime memories) is not timed."""
    timings = []
    for i, tick in enumerate(ticks):
        began = time.perf_counter()
        engine.on_tick(tick)
        if i > 0:
            timings.append((time.perf_counter() - began) * 1e3)
        engine.sink._queue.clear()  # the flush to the database is not the decision's latency
    return timings


def _stats(ms: list[float]) -> dict[str, float]:
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(max(ms)),
        "n": len(ms),
    }


def _release(
    config: EngineConfig, source: SyntheticMarket, symbols: list[str], start: datetime
) -> ServedRelease:
    """Three regime models per coin, each coin's boosters its own objects."""
    detection = config.regime_gates.detection
    horizon = config.training.model.label_horizon_bars
    frame = prepare_coin_frame(
        symbols[0],
        "1h",
        source.fetch_ohlcv(symbols[0], "1h", start=start - timedelta(days=40), end=start),
        detection=detection,
        label_horizon_bars=horizon,
    )
    rows = np.flatnonzero(frame.warm & np.isfinite(frame.label_bps))
    artifact = fit_forward_return_model(
        frame.features[rows], frame.label_bps[rows], frame.feature_names, config.training.model
    ).artifact
    codes = [REGIME_CODES[r] for r in (Regime.TREND, Regime.RANGE, Regime.PANIC)]
    production = {
        s.split("/")[0]: CoinModels(
            s.split("/")[0],
            RegimeModelPredictor({c: load_booster(artifact) for c in codes}),
            neutral_tables(),
            {c: f"{s.split('/')[0]}_{c}_bench" for c in codes},
        )
        for s in symbols
    }
    release = Release(
        1, date(2026, 1, 1), datetime(2026, 1, 1, tzinfo=UTC), "bench", None, None, "", "", (), ()
    )
    gates = RegimeGates.from_config(config.regime_gates)
    return ServedRelease(release, "1h", production, {}, gates, datetime(2026, 1, 1, tzinfo=UTC))


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    began = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - began) * 1e3


def run(coins: int, bars: int, tmp: Path) -> dict[str, Any]:
    config = EngineConfig.model_validate(
        {"data": {"synthetic": {"n_coins": coins + 30, "days": 45}}}
    )
    source = SyntheticMarket(config.data.synthetic)
    start = source.end - timedelta(hours=bars)
    full = [
        s
        for s in source.list_symbols()
        if source.fetch_ohlcv(
            s, "1h", start=start - timedelta(hours=HISTORY), end=source.end
        ).height
        == HISTORY + bars
    ][:coins]
    ticks_one = _ticks(source, full[:1], start, bars)
    ticks_all = _ticks(source, full, start, min(bars, 25))

    def engine(symbols: list[str], name: str, *, reference: bool = False) -> HamiltonEngine:
        built = _engine(config, symbols, tmp / name)
        _warm(built, source, start)
        if reference:  # the polars path, kept as the test oracle (tests/integration)
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.integration.hamilton_oracle import use_reference_path

            use_reference_path(built)
        return built

    figures: dict[str, Any] = {"coins": len(full), "bars": bars}
    figures["per_coin_tick_ms"] = _stats(_run_ticks(engine(full[:1], "one"), ticks_one))
    figures["per_coin_tick_ms_peer_reference"] = _stats(
        _run_ticks(engine(full[:1], "one_ref", reference=True), ticks_one)
    )
    figures["all_coins_tick_ms"] = _stats(_run_ticks(engine(full, "all"), ticks_all))
    figures["all_coins_tick_ms_peer_reference"] = _stats(
        _run_ticks(engine(full, "all_ref", reference=True), ticks_all[:3])
    )
    served, figures["release_build_ms"] = _timed(lambda: _release(config, source, full, start))
    with_models = engine(full, "models")
    _, figures["release_swap_ms"] = _timed(lambda: with_models.swap_release(served))
    figures["all_coins_with_models_tick_ms"] = _stats(_run_ticks(with_models, ticks_all))
    frozen = engine(full, "models_frozen")
    frozen.swap_release(served)
    settle_long_lived_heap(
        "bench", served.id
    )  # what the service does once ready and after each swap
    try:
        figures["all_coins_with_models_tick_ms_gc_frozen"] = _stats(_run_ticks(frozen, ticks_all))
    finally:
        gc.unfreeze()
    xgboost_peer = engine(full, "models_xgb")
    xgboost_peer.swap_release(served)
    xgboost_peer.forests = None  # every booster through XGBoost's own predict
    figures["all_coins_with_models_tick_ms_peer_xgboost_predict"] = _stats(
        _run_ticks(xgboost_peer, ticks_all[:4])
    )
    peer_ms = []
    detection = config.regime_gates.detection
    for symbol in full[:5]:
        window = source.fetch_ohlcv(symbol, "1h", start=start - timedelta(hours=HISTORY), end=start)
        began = time.perf_counter()
        prepare_coin_frame(symbol, "1h", window, detection=detection, label_horizon_bars=4)
        peer_ms.append((time.perf_counter() - began) * 1e3)
    figures["peer_prepare_coin_frame_800_ms"] = {"p50": float(np.percentile(peer_ms, 50))}
    figures["all_coins_per_coin_ms"] = figures["all_coins_tick_ms"]["p50"] / len(full)
    figures["targets"] = {"per_coin_p99_ms": 1.0, "all_coins_ms": 100.0}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=400)
    parser.add_argument("--bars", type=int, default=48)
    args = parser.parse_args()
    import os
    import tempfile

    from trading_core.observability.logging import configure_logging

    # the service's JSON log line per decision is part of a tick; written where it costs nothing
    # to store, so the figure is the rendering, not the disk
    with open(os.devnull, "w") as devnull, tempfile.TemporaryDirectory() as tmp:
        configure_logging(fmt="json", service="hamilton", stream=devnull)
        figures = run(args.coins, args.bars, Path(tmp))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
