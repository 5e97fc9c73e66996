"""Hamilton with the LIVE broker (``CcxtBroker`` + ccxt) against the local Binance simulator.

Issue 12's figures, each printed and written to ``bench/results/hamilton_live.json``:

1. **Tick latency** (``--coins`` 400, ``--bars`` 24 bars of 1h, a release with three regime
   models per coin as in ``bench/hamilton.py``, heap frozen as the service does): p50/p99 of
   ``engine.on_tick`` in three lanes run tick by tick on the same bars: ``live`` (CcxtBroker ->
   simulator, ccxt's rate limiter on as in the service), ``live_no_rate_limit`` (the same with
   ccxt's client-side limiter off, its own simulator: what the limiter costs) and ``paper``
   (PaperBroker, the peer). The first tick (regime memories built) is not timed, as in
   bench/hamilton.py. Also: each ``submit`` call's own time (the tick's only contact with the
   broker), the time from a tick's end until ``open_orders()`` is empty ("quiet"), orders sent /
   filled / refused, and ``--slow-ticks`` more ticks while every order call to the exchange is
   held 800 ms (``accept_then_timeout`` with a delay under the client timeout: a slow exchange).
2. **Cost model accuracy**: for every filled live order, the Execution's ``expected_cost_bps``
   (half-spread + slippage + fee) against its ``realized_cost_bps`` (average fill price vs the
   decision's reference price, plus the fee), with the simulator's mid pinned to each coin's
   close before the tick's orders can reach it; cross-checked against the simulator's own
   fills (its average price and commission per client order id). Orders of the slow phase are
   left out (they may fill after the next tick re-pinned the mid).
3. **Soak** (``--soak-hours`` 24 of 1m bars = 1440 ticks x ``--soak-coins``): the live engine,
   an EventSink into a SQLite Brain Library (a flush requested after every tick), a fault on the
   order endpoints every ``--fault-every`` ticks (the next one of ``FAULT_CYCLE`` once the last
   one struck), ``save_state`` after every tick as the service does, the broker given the rest
   of the "minute" to finish, and one restart midway (state saved -> broker stopped, events
   flushed -> new broker + engine -> restore -> ``reconcile_at_start``, as
   ``hamilton_exec/runtime/wiring.py`` does). Checked: no crash, decision events in the library ==
   ticks x coins after the final flush, one exchange order per client order id; RSS of this process
   and of the simulator every ``--rss-every`` ticks. The service's periodic reconcile is off by
   default (``--reconcile-every N`` turns it on: read with the broker quiet, or with
   ``--reconcile-overlap`` in a thread while the next tick's orders go out).

Venue: Binance USD-M perpetuals (``cost_model.instrument: perp``, ``hamilton.orders.market_type:
linear``), the cost model's Binance fees set to the simulator's USD-M fees (maker 2, taker 5 bps)
so that the fee side of the comparison is fair. The client timeout is 1000 ms. The simulator
runs in its own process (a ``python -c`` driver over pipes), so its request handling does not
share this process's GIL, as a remote exchange would not; on a 2-core machine it still shares
the CPUs.

The synthetic market serves 1h candles only: the soak's "1m bars" are the synthetic 1h candles
relabelled one minute apart (the engine runs with timeframe 1m: bar times, staleness, order
ids and the risk state's minute/day clocks are 1m ones; the prices and volumes are 1h ones).

Usage: ``.venv/bin/python bench/hamilton_live.py [--coins 400] [--bars 24] [--slow-ticks 4]
[--soak-hours 24] [--soak-coins 400] [--fault-every 10] [--rss-every 60] [--reconcile-every 0]
[--reconcile-overlap] [--skip-latency] [--skip-soak] [--out PATH]``.
"""

import argparse
import contextlib
import gc
import io
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from hamilton_exec.accounting.event_store import EventSink
from hamilton_exec.execution.brokers import Broker, OrderReport, OrderRequest, PaperBroker
from hamilton_exec.execution.live_broker import CcxtBroker
from hamilton_exec.execution.live_client import BrokerMetric
from hamilton_exec.market_data.window import Candle, Tick
from hamilton_exec.runtime.heap import settle_long_lived_heap
from hamilton_exec.runtime.service import save_state
from hamilton_exec.runtime.wiring import reconcile_at_start
from hamilton_exec.settings import HamiltonSettings
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from hamilton_exec.tick.hamilton_engine import HamiltonEngine, TickReport
from hamilton_exec.tick.served_release import CoinModels, ServedRelease, neutral_tables
from trading_core.brain import BrainLibrary
from trading_core.brain.records import ModelKey, Release
from trading_core.config.models import EngineConfig
from trading_core.market.ccxt_source import build_ccxt_client
from trading_core.market.synthetic import SyntheticMarket
from trading_core.observability import metric_names as names
from trading_core.observability.logging import configure_logging
from trading_core.regime import RegimeGates
from trading_core.training.dataset import prepare_coin_frame
from trading_core.training.model import FittedModel, fit_forward_return_model, load_booster
from trading_core.training.predictor import RegimeModelPredictor
from trading_core.types import REGIME_CODES, Regime

RESULTS = Path(__file__).parent / "results" / "hamilton_live.json"
HISTORY = 800
HOUR_MS = 3_600_000
API_KEY = "bench-live-key-7a1c"
API_SECRET = "bench-live-secret-3e9d"  # noqa: S105 - the local simulator's key
CAPITAL_USD = 100_000.0
TAKER_BPS, MAKER_BPS = 5.0, 2.0  # the simulator's USD-M fees (matching.EngineConfig)
CLIENT_TIMEOUT_MS = 1000
RECV_WINDOW_MS = 5000  # Binance's default (and the service's); the smoke test shortens it
ORDER_PATH = "/fapi/v1/order"  # USD-M; the spot equivalent is /api/v3/order
# (method, kind) in the order the soak injects them, one every --fault-every ticks
FAULT_CYCLE: tuple[tuple[str, str], ...] = (
    ("POST", "accept_then_timeout"),
    ("POST", "503_after"),
    ("POST", "503_before"),
    ("POST", "reset_after"),
    ("GET", "not_found"),
    ("POST", "429"),
)
ACCEPT_THEN_TIMEOUT_DELAY_S = 2.5  # > the client's 1 s timeout: the answer is lost
SLOW_EXCHANGE_DELAY_S = 0.8  # < the client timeout: a slow but successful answer
QUIET_LIMIT_S = 30.0
SAMPLES_PER_WARNING = 5

# --- the simulator in its own process ---------------------------------------------------------

# Runs in ``python -c``: JSON lines in on stdin, "@@"-prefixed JSON lines out on stdout (the
# simulator's own logs go to /dev/null).
_SIM_DRIVER = r"""
import json, os, sys
from collections import Counter
from trading_core.observability.logging import configure_logging
configure_logging(fmt="json", level="WARNING", service="exchange-sim",
                  stream=open(os.devnull, "w"))
from hamilton_exec.exchange_sim import SimulatorServer
from hamilton_exec.exchange_sim.market import default_spec

def reply(data):
    sys.stdout.write("@@" + json.dumps(data) + "\n")
    sys.stdout.flush()

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

setup = json.loads(sys.stdin.readline())
specs = [default_spec(s, price=p) for s, p in setup["symbols"]]
sim = SimulatorServer(symbols=specs, balances=setup["balances"],
                      futures_balances=setup["futures_balances"],
                      api_key=setup["api_key"], api_secret=setup["api_secret"])
sim.start()
reply({"base_url": sim.base_url, "pid": os.getpid()})
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    if op == "pin":
        for sid, price in cmd["prices"].items():
            sim.set_price(sid, price)
        reply({})
    elif op == "inject":
        sim.faults.inject(cmd["endpoint"], cmd["kind"], count=cmd["count"],
                          delay_s=cmd.get("delay_s"))
        reply({})
    elif op == "clear":
        sim.faults.clear()
        reply({})
    elif op == "rss":
        reply({"rss_mb": rss_mb()})
    elif op == "pending":
        reply({"pending": len(sim.faults.pending())})
    elif op == "state":
        with sim.lock:
            fills = {}
            for venue in ("spot", "futures"):
                for o in sim.engine.orders[venue].values():
                    f = fills.setdefault(o.client_order_id, [0.0, 0.0, 0.0, 0])
                    f[0] += float(o.executed_qty)
                    f[1] += float(o.cum_quote)
                    f[2] += float(sum(x.commission for x in o.fills))
                    f[3] += 1
            per_cid = dict(sim.engine.orders_per_client_id)
            positions = {s: [float(p.amount), float(p.entry_price)]
                         for s, p in sim.engine.futures.positions.items()}
            wallet = float(sim.engine.futures.wallet.get("USDT", 0))
        fired = Counter(f"{e} {k}" for e, k in sim.faults.fired)
        reply({"orders_per_client_id": per_cid, "fills": fills, "fired": dict(fired),
               "pending_faults": len(sim.faults.pending()), "positions": positions,
               "wallet": wallet,
               "rss_mb": rss_mb()})
    elif op == "stop":
        break
sim.stop()
reply({"stopped": True})
"""


class SimProcess:
    """The Binance simulator (``hamilton_exec.exchange_sim``) in a child process."""

    def __init__(self, prices: Mapping[str, float], log_path: Path) -> None:
        """``prices``: each symbol (``BTC/USDT``) at the level its filters are made for."""
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
        setup = {
            "symbols": sorted(prices.items()),
            "balances": {"USDT": CAPITAL_USD},
            "futures_balances": {"USDT": CAPITAL_USD},
            "api_key": API_KEY,
            "api_secret": API_SECRET,
        }
        hello = self._call(setup)
        self.base_url: str = hello["base_url"]
        self.pid: int = hello["pid"]

    def _call(self, command: Mapping[str, Any]) -> dict[str, Any]:
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        for line in stdout:
            if line.startswith("@@"):
                answer: dict[str, Any] = json.loads(line[2:])
                return answer
        self._log.flush()
        tail = self._log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the simulator process ended (rc {self._proc.wait(5)}):\n{tail}")

    def pin(self, prices: Mapping[str, float]) -> None:
        """Pin each symbol's mid (Binance ids, ``BTCUSDT``) from now on."""
        self._call({"op": "pin", "prices": dict(prices)})

    def inject(
        self, endpoint: str, kind: str, *, count: int = 1, delay_s: float | None = None
    ) -> None:
        self._call(
            {"op": "inject", "endpoint": endpoint, "kind": kind, "count": count, "delay_s": delay_s}
        )

    def clear_faults(self) -> None:
        self._call({"op": "clear"})

    def rss_mb(self) -> float:
        return float(self._call({"op": "rss"})["rss_mb"])

    def pending_faults(self) -> int:
        return int(self._call({"op": "pending"})["pending"])

    def state(self) -> dict[str, Any]:
        return self._call({"op": "state"})

    def stop(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, RuntimeError):
                self._call({"op": "stop"})
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()


def venue_id(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTCUSDT`` (the simulator's and Binance's symbol id)."""
    return symbol.replace("/", "")


# --- market data ------------------------------------------------------------------------------


@dataclass
class Bars:
    """Every coin's candles on one clock (``bar_ms`` apart), history first, as numpy arrays;
    candles are made on demand (a soak of 1440 x 400 candle objects would blur its RSS)."""

    symbols: list[str]
    btc_symbol: str
    bar_ms: int
    times: np.ndarray  # (n,) open times, ms
    values: dict[str, np.ndarray]  # symbol -> (n, 5) open, high, low, close, volume

    @property
    def n(self) -> int:
        return int(self.times.size)

    def candle(self, symbol: str, i: int) -> Candle:
        o, h, low, c, v = self.values[symbol][i]
        return Candle(int(self.times[i]), float(o), float(h), float(low), float(c), float(v))

    def tick(self, i: int) -> Tick:
        now = datetime.fromtimestamp((int(self.times[i]) + self.bar_ms) / 1000, tz=UTC)
        return Tick(int(self.times[i]), {s: self.candle(s, i) for s in self.symbols}, now)

    def closes(self, i: int, *, venue_ids: bool = True) -> dict[str, float]:
        """Each coin's close at bar ``i``, by Binance id (``BTCUSDT``) or by symbol."""
        return {venue_id(s) if venue_ids else s: float(self.values[s][i, 3]) for s in self.symbols}

    def warm(self, engine: HamiltonEngine, until: int) -> None:
        """Fill the engine's windows with the ``history_bars`` bars before index ``until``."""
        first = max(0, until - engine.settings.history_bars)
        for symbol, window in engine.windows.items():
            for i in range(first, until):
                window.append(self.candle(symbol, i))
        if engine.btc_symbol not in engine.windows:
            for i in range(first, until):
                engine.btc_window.append(self.candle(self.btc_symbol, i))


def load_market(
    coins: int, run_bars: int, *, bar_ms: int = HOUR_MS
) -> tuple[EngineConfig, SyntheticMarket, Bars, datetime]:
    """``coins`` synthetic coins with every 1h bar of HISTORY + ``run_bars`` (coins listed
    later are left out: the universe is widened until enough have the whole span)."""
    days = max(45, (HISTORY + run_bars) // 24 + 12)
    for extra in (30, 130, 330, 730):
        config = EngineConfig.model_validate(
            {"data": {"synthetic": {"n_coins": coins + extra, "days": days}}}
        )
        source = SyntheticMarket(config.data.synthetic)
        bars, start = load_bars(source, coins, run_bars, bar_ms=bar_ms)
        if len(bars.symbols) == coins:
            return config, source, bars, start
    raise ValueError(f"the synthetic market has fewer than {coins} coins over {days} days")


def load_bars(
    source: SyntheticMarket, coins: int, run_bars: int, *, bar_ms: int = HOUR_MS
) -> tuple[Bars, datetime]:
    """The first ``coins`` synthetic coins (or fewer) with every 1h bar of HISTORY +
    ``run_bars`` ending at the market's end, relabelled ``bar_ms`` apart (1h: unchanged).
    Returns the bars and the 1h time of the first run bar (the release is trained before)."""
    start = source.end - timedelta(hours=run_bars)
    first = start - timedelta(hours=HISTORY)
    frames = {}
    for symbol in source.list_symbols():
        frame = source.fetch_ohlcv(symbol, "1h", start=first, end=source.end)
        if frame.height == HISTORY + run_bars:
            frames[symbol] = frame
        if len(frames) == coins:
            break
    btc = next(s for s in source.list_symbols() if s.startswith("BTC/"))
    symbols = sorted(frames)
    if btc not in frames:
        frames[btc] = source.fetch_ohlcv(btc, "1h", start=first, end=source.end)
    hourly = frames[symbols[0]]["timestamp"].dt.epoch("ms").to_numpy()
    times = (hourly - hourly[0]) // HOUR_MS * bar_ms + hourly[0]
    cols = ["open", "high", "low", "close", "volume"]
    values = {s: f.select(cols).to_numpy().astype(np.float64) for s, f in frames.items()}
    return Bars(symbols, btc, bar_ms, times.astype(np.int64), values), start


# --- config, release, engines -----------------------------------------------------------------


def bench_config(
    source_config: EngineConfig, *, timeframe: str, base_url: str, tmp: Path
) -> EngineConfig:
    """USD-M perpetuals priced with the simulator's fees; the exchange at ``base_url``."""
    return EngineConfig.model_validate(
        {
            "engine": {"timeframes": [timeframe]},
            "data": {
                "synthetic": source_config.data.synthetic.model_dump(),
                "exchange": {
                    "name": "binance",
                    "api_key": API_KEY,
                    "api_secret": API_SECRET,
                    "base_url": base_url,
                    "timeout_ms": CLIENT_TIMEOUT_MS,
                    "recv_window_ms": RECV_WINDOW_MS,
                    "market_types": ["linear"],
                },
            },
            "cost_model": {
                "instrument": "perp",
                "fee_schedule": {
                    "binance": {
                        "maker_bps": MAKER_BPS,
                        "taker_bps": TAKER_BPS,
                        "funding_bps_per_8h": 1.0,
                    }
                },
            },
            "risk": {"initial_capital_usd": CAPITAL_USD},
            "hamilton": {"history_bars": HISTORY, "orders": {"market_type": "linear"}},
            "training": {
                "model_versioning": {
                    "brain_library_dsn": f"sqlite:///{tmp / 'brain.db'}",
                    "storage_path": str(tmp / "artifacts"),
                }
            },
        }
    )


def train_artifact(
    config: EngineConfig, source: SyntheticMarket, symbol: str, start: datetime
) -> FittedModel:
    """One XGBoost model on 40 days of the coin's 1h bars before ``start`` (bench/hamilton.py)."""
    frame = prepare_coin_frame(
        symbol,
        "1h",
        source.fetch_ohlcv(symbol, "1h", start=start - timedelta(days=40), end=start),
        detection=config.regime_gates.detection,
        label_horizon_bars=config.training.model.label_horizon_bars,
    )
    rows = np.flatnonzero(frame.warm & np.isfinite(frame.label_bps))
    return fit_forward_return_model(
        frame.features[rows], frame.label_bps[rows], frame.feature_names, config.training.model
    )


def served_release(
    config: EngineConfig, symbols: Sequence[str], artifact: bytes, release: Release, timeframe: str
) -> ServedRelease:
    """Three regime models per coin, each coin's boosters its own objects (bench/hamilton.py)."""
    codes = [REGIME_CODES[r] for r in (Regime.TREND, Regime.RANGE, Regime.PANIC)]
    production = {}
    for symbol in symbols:
        coin = symbol.split("/")[0]
        production[coin] = CoinModels(
            coin,
            RegimeModelPredictor({c: load_booster(artifact) for c in codes}),
            neutral_tables(),
            {c: f"{coin}_{c}_bench" for c in codes},
        )
    gates = RegimeGates.from_config(config.regime_gates)
    return ServedRelease(release, timeframe, production, {}, gates, release.created_at)


def bench_release() -> Release:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return Release(1, date(2026, 1, 1), at, "bench", None, None, "", "", (), ())


def library_release(library: BrainLibrary, fit: FittedModel, timeframe: str) -> Release:
    """A real release row (the decision events reference it): one registered model."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    version = library.register_model(
        ModelKey("BTC", Regime.TREND.value, timeframe),
        fit.artifact,
        metrics={"sharpe": 1.0},
        params=fit.params,
        feature_list=list(fit.feature_names),
        data_hash="bench-live",
        partition_date=at.date(),
        created_at=at,
    )
    return library.create_release(
        at.date(), production=[version.name], created_by="bench", note="bench/hamilton_live.py"
    )


class BrokerEvents:
    """The live broker's metric callbacks, counted (name/status/reason)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, metric: BrokerMetric) -> None:
        if metric.name == "order_report":
            return
        with self._lock:
            self.counts[f"{metric.name}:{metric.status}:{metric.reason}"] += 1


def live_broker(config: EngineConfig, on_metric: BrokerEvents) -> CcxtBroker:
    """As ``hamilton_exec.runtime.wiring._live_broker``: own ccxt client, markets loaded, clock
    measured."""
    exchange, orders = config.data.exchange, config.hamilton.orders
    client = build_ccxt_client(exchange, market_types=(orders.market_type,))
    broker = CcxtBroker(
        client, orders=orders, exchange=exchange, quote=config.engine.quote, on_metric=on_metric
    )
    broker.connect()
    return broker


def new_engine(
    config: EngineConfig,
    symbols: Sequence[str],
    state_dir: Path,
    *,
    broker: Broker,
    library: BrainLibrary | None = None,
    now: datetime,
) -> HamiltonEngine:
    settings = HamiltonSettings.from_config(
        config, symbols=tuple(symbols), state_dir=state_dir, metrics_port=None, health_port=None
    )
    sink = EventSink(library, settings.events_spool, flush_timeout_s=settings.flush_timeout_s)
    return HamiltonEngine(
        config,
        settings,
        symbols,
        sink=sink,
        metrics=HamiltonMetrics(venue=config.cost_model.venue),
        broker=broker,
        now=now,
    )


@dataclass
class SubmitTimer:
    """Wraps ``broker.submit`` (an instance attribute): the time of each call, ms."""

    broker: Any
    ms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        inner: Callable[[OrderRequest], OrderReport] = self.broker.submit

        def timed(order: OrderRequest) -> OrderReport:
            began = time.perf_counter()
            try:
                return inner(order)
            finally:
                self.ms.append((time.perf_counter() - began) * 1e3)

        self.broker.submit = timed


def wait_quiet(broker: Broker, limit_s: float = QUIET_LIMIT_S) -> float:
    """Milliseconds until the broker has no open order (NaN past ``limit_s``)."""
    began = time.perf_counter()
    while broker.open_orders():
        if time.perf_counter() - began > limit_s:
            return math.nan
        time.sleep(0.002)
    return (time.perf_counter() - began) * 1e3


# --- bookkeeping --------------------------------------------------------------------------------


@dataclass
class OrderLedger:
    """What one engine sent and how each order ended (its executions, as the engine hands them
    to its EventSink)."""

    requests: dict[str, OrderRequest] = field(default_factory=dict)
    decided: dict[str, dict[str, float]] = field(default_factory=dict)  # cid -> cost parts
    submitted: Counter[str] = field(default_factory=Counter)  # submit's status:reason
    executions: list[dict[str, Any]] = field(default_factory=list)
    excluded: set[str] = field(default_factory=set)  # left out of the cost comparison

    def watch(self, engine: HamiltonEngine) -> None:
        """Record every execution ``engine`` hands its sink (the sink still gets it)."""
        inner = engine.sink.add_execution

        def add_execution(execution: Any) -> None:
            self.executions.append(execution.to_dict())
            inner(execution)

        setattr(engine.sink, "add_execution", add_execution)  # noqa: B010 - a bound method

    def after_tick(
        self, engine: HamiltonEngine, tick: Tick, report: TickReport, *, exclude: bool = False
    ) -> None:
        """Count the tick's orders; ``exclude``: leave them out of the cost comparison."""
        for order in report.orders:
            self.submitted[f"{order.status}:{order.reason_code}"] += 1
            if exclude:
                self.excluded.add(order.client_order_id)
        for cid, sent in engine.order_book.sent.items():
            self.requests.setdefault(cid, sent.order)
        for order in report.orders:
            decision = report.decisions.get(order.symbol)
            request = self.requests.get(order.client_order_id)
            candle = tick.candles.get(order.symbol)
            if decision is None or request is None or candle is None:
                continue
            half_spread = decision.costs.spread_bps / 2.0
            self.decided[order.client_order_id] = {
                "half_spread_bps": half_spread,
                "slippage_bps": request.price_adjust_bps - half_spread,
                "participation": abs(request.signed_qty) / candle.volume
                if candle.volume > 0
                else math.inf,
            }

    def summary(self) -> dict[str, Any]:
        final = Counter(e["status"] for e in self.executions)
        return {
            "sent": sum(n for k, n in self.submitted.items() if k.startswith("pending")),
            "filled": final["filled"],
            "refused_at_submit": sum(
                n for k, n in self.submitted.items() if k.startswith("rejected")
            ),
            "refused_after_submit": final["rejected"],
            "canceled": final["canceled"],
            "expired": final["expired"],
            "submit_status": dict(self.submitted),
            "slow_phase_orders": len(self.excluded),
            "slow_phase_final_status": dict(
                Counter(
                    f"{e['status']}:{e['reason_code']}"
                    for e in self.executions
                    if e["client_order_id"] in self.excluded
                )
            ),
            "final_status": dict(
                Counter(f"{e['status']}:{e['reason_code']}" for e in self.executions)
            ),
            "not_filled_details (top 5)": Counter(
                f"{e['status']}:{e['reason_code']}: {e['detail']}"
                for e in self.executions
                if e["status"] != "filled"
            ).most_common(5),
        }


def drop_queued(engine: HamiltonEngine) -> None:
    """The latency run has no database: the sink's queue is dropped after each tick, as in
    bench/hamilton.py (the flush is not the decision's latency)."""
    with engine.sink._cond:
        engine.sink._queue.clear()


def stats(ms: Sequence[float]) -> dict[str, float]:
    values = [v for v in ms if not math.isnan(v)]
    if not values:
        return {"n": 0, "timeouts": len(ms)}
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(max(values)),
        "n": len(values),
        "timeouts": len(ms) - len(values),
    }


def distribution(values: Sequence[float], *, within: float = 0.5) -> dict[str, float]:
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {"n": 0}
    p5, p50, p95 = np.percentile(x, [5, 50, 95])
    return {
        "n": int(x.size),
        "mean": float(x.mean()),
        "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "p5": float(p5),
        "p50": float(p50),
        "p95": float(p95),
        "share_within_0_5_bps": float(np.mean(np.abs(x) <= within)),
    }


def cost_accuracy(ledger: OrderLedger, sim_fills: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """Expected vs realized cost of every filled order (see the module docstring)."""
    rows = []
    for execution in ledger.executions:
        if execution["status"] != "filled" or execution["realized_cost_bps"] is None:
            continue
        cid = execution["client_order_id"]
        if cid in ledger.excluded:
            continue
        request = ledger.requests.get(cid)
        side = 1.0 if execution["side"] == "buy" else -1.0
        reference = float(execution["reference_price"])
        row: dict[str, float] = {
            "expected": float(execution["expected_cost_bps"]),
            "realized": float(execution["realized_cost_bps"]),
            "realized_impact": float(execution["realized_price_impact_bps"]),
            "realized_fee": float(execution["realized_fee_bps"]),
            "notional_usd": float(execution["filled_qty"]) * float(execution["avg_fill_price"]),
            "fill_ratio": float(execution["filled_qty"]) / float(execution["requested_qty"]),
        }
        if request is not None:
            row["expected_price"] = request.price_adjust_bps
            row["expected_fee"] = request.fee_bps
        parts = ledger.decided.get(cid)
        if parts is not None:
            row.update({f"expected_{k}": v for k, v in parts.items()})
        fill = sim_fills.get(cid)
        if fill is not None and fill[0] > 0:
            qty, quote, commission = float(fill[0]), float(fill[1]), float(fill[2])
            avg = quote / qty
            row["sim_impact"] = side * (avg - reference) / reference * 1e4
            row["sim_fee"] = commission / quote * 1e4
            row["sim_realized"] = row["sim_impact"] + row["sim_fee"]
        rows.append(row)

    def col(name: str) -> list[float]:
        return [r[name] for r in rows if name in r]

    def diff(a: str, b: str) -> list[float]:
        return [r[a] - r[b] for r in rows if a in r and b in r]

    return {
        "n_filled": len(rows),
        "n_left_out (slow phase)": len(ledger.excluded),
        "error_bps (realized - expected)": distribution(diff("realized", "expected")),
        "expected_bps": distribution(col("expected")),
        "realized_bps": distribution(col("realized")),
        "price_part": {
            "expected (half-spread + slippage)": distribution(col("expected_price")),
            "of which half-spread": distribution(col("expected_half_spread_bps")),
            "of which slippage": distribution(col("expected_slippage_bps")),
            "realized impact": distribution(col("realized_impact")),
            "error": distribution(diff("realized_impact", "expected_price")),
        },
        "fee_part": {
            "expected": distribution(col("expected_fee")),
            "realized (as the broker reported it)": distribution(col("realized_fee")),
            "simulator's commission": distribution(col("sim_fee")),
        },
        "cross_check_vs_simulator_fills": {
            "realized (broker) - realized (simulator fills)": distribution(
                diff("realized", "sim_realized")
            ),
            "impact (broker) - impact (simulator fills)": distribution(
                diff("realized_impact", "sim_impact")
            ),
        },
        "notional_usd": distribution(col("notional_usd")),
        "participation (order qty / decision bar volume)": distribution(
            [p for p in col("expected_participation") if math.isfinite(p)]
        ),
        "fill_ratio": distribution(col("fill_ratio")),
    }


class LogTap(io.TextIOBase):
    """A log stream: renders everything (the tick pays for its log lines as the service
    does), keeps nothing but a count of warning and error events by name."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.samples: dict[str, list[str]] = {}

    def write(self, text: str) -> int:
        if '"level": "warning"' in text or '"level": "error"' in text:
            for line in text.splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    key = f"{record.get('level')}:{record.get('event')}"
                    self.counts[key] += 1
                    kept = self.samples.setdefault(key, [])
                    if len(kept) < SAMPLES_PER_WARNING:
                        kept.append(line[:600])
        return len(text)

    def writable(self) -> bool:
        return True


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- 1 + 2: tick latency and cost accuracy ------------------------------------------------------


@dataclass
class Lane:
    """One engine of the latency run (live: with its own simulator process) and its figures."""

    name: str
    engine: HamiltonEngine
    sim: SimProcess | None = None
    events: BrokerEvents | None = None
    ledger: OrderLedger = field(default_factory=OrderLedger)
    tick_ms: list[float] = field(default_factory=list)
    slow_ms: list[float] = field(default_factory=list)
    quiet_ms: list[float] = field(default_factory=list)
    quiet_with_orders_ms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.submits = SubmitTimer(self.engine.broker)
        self.ledger.watch(self.engine)

    def step(self, market: Bars, i: int, *, timed: bool, slow: bool) -> None:
        tick = market.tick(i)
        if self.sim is not None:
            self.sim.pin(market.closes(i))  # the exchange's mid = the decision's reference
        began = time.perf_counter()
        report = self.engine.on_tick(tick)
        elapsed_ms = (time.perf_counter() - began) * 1e3
        quiet = math.nan
        if self.sim is not None and not slow:
            quiet = wait_quiet(self.engine.broker)
        # orders of the slow phase may reach the exchange after the next tick re-pinned its
        # mid: their reference is no longer the mid they fill against
        self.ledger.after_tick(self.engine, tick, report, exclude=slow)
        drop_queued(self.engine)
        if not timed:
            return
        (self.slow_ms if slow else self.tick_ms).append(elapsed_ms)
        if self.sim is not None and not slow:
            self.quiet_ms.append(quiet)
            if report.orders:
                self.quiet_with_orders_ms.append(quiet)

    def finish(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "tick_ms": stats(self.tick_ms),
            "submit_ms": stats(self.submits.ms),
        }
        if self.sim is None:  # paper: the last tick's orders fill at the next bar's open
            figures["orders"] = self.ledger.summary()
            figures["cost_accuracy"] = cost_accuracy(self.ledger, {})
            return figures
        if self.slow_ms:
            self.sim.clear_faults()
            figures["tick_ms_slow_exchange"] = stats(self.slow_ms)
        figures["quiet_after_last_tick_ms"] = wait_quiet(self.engine.broker, 120.0)
        self.engine.apply_reports(self.engine.broker.drain())
        state = self.sim.state()
        per_cid = state["orders_per_client_id"]
        figures |= {
            "orders": self.ledger.summary(),  # after the last reports are in
            "quiet_after_tick_ms": stats(self.quiet_ms),
            "quiet_after_tick_ms_ticks_with_orders": stats(self.quiet_with_orders_ms),
            "exchange_orders": len(per_cid),
            "max_orders_per_client_id": max(per_cid.values(), default=0),
            "faults_fired": state["fired"],
            "broker_events": dict(self.events.counts) if self.events else {},
            "cost_accuracy": cost_accuracy(self.ledger, state["fills"]),
        }
        return figures


def run_latency(coins: int, bars: int, slow_ticks: int, tmp: Path) -> dict[str, Any]:
    """Live (ccxt's rate limiter on, as the service), live with it off (a peer that shows what
    the limiter costs, its own simulator), and paper, tick by tick on the same bars."""
    source_config, source, market, start = load_market(coins, bars + slow_ticks)
    levels = market.closes(HISTORY, venue_ids=False)
    with contextlib.ExitStack() as stack:
        sims = []
        for name in ("live", "live_no_rate_limit"):
            sims.append(SimProcess(levels, tmp / f"sim_{name}.log"))
            stack.callback(sims[-1].stop)
        config = bench_config(source_config, timeframe="1h", base_url=sims[0].base_url, tmp=tmp)
        fit = train_artifact(config, source, market.symbols[0], start)
        began = time.perf_counter()
        served = served_release(config, market.symbols, fit.artifact, bench_release(), "1h")
        figures: dict[str, Any] = {
            "coins": len(market.symbols),
            "bars": bars,
            "release_build_ms": (time.perf_counter() - began) * 1e3,
        }
        now = datetime.fromtimestamp(int(market.times[HISTORY]) / 1000, tz=UTC)
        lanes = []
        for n, sim in enumerate(sims):
            events = BrokerEvents()
            url = sim.base_url
            lane_config = bench_config(source_config, timeframe="1h", base_url=url, tmp=tmp)
            broker = live_broker(lane_config, events)
            stack.callback(broker.close)
            client: Any = broker.client
            client.enableRateLimit = n == 0  # ccxt's own limiter; the service keeps it on
            state_dir = tmp / f"live{n}"
            engine = new_engine(lane_config, market.symbols, state_dir, broker=broker, now=now)
            lanes.append(Lane(("live", "live_no_rate_limit")[n], engine, sim, events))
        started = time.monotonic()
        paper = new_engine(config, market.symbols, tmp / "paper", broker=PaperBroker(), now=now)
        lanes.append(Lane("paper", paper))
        for lane in lanes:
            market.warm(lane.engine, HISTORY)
            lane.engine.swap_release(served)
            if lane.sim is not None:
                reconcile_at_start(lane.engine, fresh_start=True)
        settle_long_lived_heap("bench_live", served.id)
        stack.callback(gc.unfreeze)
        # a new order is looked up by client id before it is sent; in the first recv_window +
        # margin after a broker's start a "not found" is not final: trade after that
        window_s = (config.data.exchange.recv_window_ms + 2000) / 1000
        figures["startup_wait_s"] = max(0.0, window_s - (time.monotonic() - started))
        time.sleep(figures["startup_wait_s"])
        figures["lanes"] = _latency_ticks(market, lanes, bars, slow_ticks)
    return figures


def _latency_ticks(
    market: Bars, lanes: Sequence[Lane], bars: int, slow_ticks: int
) -> dict[str, Any]:
    for k in range(bars + slow_ticks):
        slow = k >= bars
        if k == bars:  # every order call held 800 ms (answered: a slow exchange)
            for lane in lanes:
                for method in ("POST", "GET"):
                    if lane.sim is not None:
                        lane.sim.inject(
                            f"{method} {ORDER_PATH}",
                            "accept_then_timeout",
                            count=100_000,
                            delay_s=SLOW_EXCHANGE_DELAY_S,
                        )
        for lane in lanes:  # the first tick builds the regime memories: not timed
            lane.step(market, HISTORY + k, timed=k > 0, slow=slow)
    return {lane.name: lane.finish() for lane in lanes}


# --- 3: soak --------------------------------------------------------------------------------------


@dataclass
class SoakSetup:
    """What a soak's engines are built from (the same before and after the restart)."""

    config: EngineConfig
    market: Bars
    sim: SimProcess
    library: BrainLibrary
    served: ServedRelease
    state_dir: Path
    events: BrokerEvents

    def engine(self, broker: CcxtBroker, until: int) -> HamiltonEngine:
        """A new engine over ``broker``, windows filled with the bars before ``until``."""
        now = datetime.fromtimestamp(int(self.market.times[until]) / 1000, tz=UTC)
        engine = new_engine(
            self.config,
            self.market.symbols,
            self.state_dir,
            broker=broker,
            library=self.library,
            now=now,
        )
        self.market.warm(engine, until)
        engine.swap_release(self.served)
        return engine


@dataclass
class Soak:
    """One soak run's moving parts (the engine and broker are replaced at the restart)."""

    setup: SoakSetup
    engine: HamiltonEngine
    broker: CcxtBroker
    ledger: OrderLedger = field(default_factory=OrderLedger)
    tick_ms: list[float] = field(default_factory=list)
    quiet_ms: list[float] = field(default_factory=list)
    save_ms: list[float] = field(default_factory=list)
    flush_wait_ms: list[float] = field(default_factory=list)
    pin_ms: list[float] = field(default_factory=list)  # pinning the simulator's mids
    states: list[tuple[int, str, float]] = field(default_factory=list)  # changes of state
    last_equity: float | None = None
    largest_drop: tuple[int, float] = (-1, 0.0)  # (tick, USD): the engine's equity, one tick
    rss: list[dict[str, float]] = field(default_factory=list)
    reconciles: Counter[str] = field(default_factory=Counter)
    reconcile_reads_failed: int = 0
    max_cash_drift_usd: float = 0.0
    max_position_drift: float = 0.0
    restart: dict[str, Any] = field(default_factory=dict)
    faults_injected: Counter[str] = field(default_factory=Counter)
    _reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.ledger.watch(self.engine)

    def reconcile_off_tick(self, *, overlap: bool) -> None:
        """As the service's periodic reconcile: the exchange read and offered to the engine
        (applied at the next tick's start). ``overlap``: read in a thread while the next tick
        runs and its orders go out (the service reads at any moment); else read now, with the
        broker quiet (the common case on 1m bars: the read takes seconds of the minute)."""
        if self._reader is not None and self._reader.is_alive():
            return
        engine, broker = self.engine, self.broker
        seq = engine.quiet_order_seq()  # as the service: no read while orders are in flight
        if seq is None:
            return

        def read() -> None:
            try:
                snapshot = broker.snapshot(engine.symbols)
            except Exception:  # noqa: BLE001 - counted, the next interval tries again
                self.reconcile_reads_failed += 1
                return
            if snapshot is not None:
                engine.offer_snapshot(snapshot, seq)

        if not overlap:
            read()
            return

        self._reader = threading.Thread(target=read, name="bench-reconcile", daemon=True)
        self._reader.start()

    def join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join()


def run_soak(
    coins: int,
    hours: float,
    *,
    fault_every: int,
    reconcile_every: int,
    rss_every: int,
    tmp: Path,
    overlap: bool = False,
) -> dict[str, Any]:
    ticks = round(hours * 60)
    source_config, source, market, start = load_market(coins, ticks, bar_ms=60_000)
    with contextlib.ExitStack() as stack:
        sim = SimProcess(market.closes(HISTORY, venue_ids=False), tmp / "sim_soak.log")
        stack.callback(sim.stop)
        config = bench_config(source_config, timeframe="1m", base_url=sim.base_url, tmp=tmp)
        library = BrainLibrary.from_config(config)
        stack.callback(library.close)
        library.migrate()
        fit = train_artifact(config, source, market.symbols[0], start)
        release = library_release(library, fit, "1m")
        served = served_release(config, market.symbols, fit.artifact, release, "1m")
        events = BrokerEvents()
        setup = SoakSetup(config, market, sim, library, served, tmp / "soak_state", events)
        broker = live_broker(config, events)
        soak = Soak(setup, setup.engine(broker, HISTORY), broker)

        def close_broker() -> None:  # the broker in force (replaced at the restart)
            soak.broker.close()

        stack.callback(close_broker)
        reconcile_at_start(soak.engine, fresh_start=True)
        settle_long_lived_heap("bench_soak", served.id)
        stack.callback(gc.unfreeze)
        began = time.perf_counter()
        _soak_ticks(
            soak,
            ticks,
            fault_every=fault_every,
            reconcile_every=reconcile_every,
            overlap=overlap,
            rss_every=rss_every,
        )
        wall_s = time.perf_counter() - began
        return _soak_figures(soak, ticks, wall_s)
    raise AssertionError("unreachable")  # pragma: no cover


def _soak_ticks(
    soak: Soak,
    ticks: int,
    *,
    fault_every: int,
    reconcile_every: int,
    overlap: bool,
    rss_every: int,
) -> None:
    setup = soak.setup
    restart_at = ticks // 2
    fault = 0
    for k in range(ticks):
        i = HISTORY + k
        # the next fault of the cycle once the previous one has struck (an order is rare
        # enough at some ticks that faults would queue up)
        if fault_every and k % fault_every == fault_every - 1 and setup.sim.pending_faults() == 0:
            method, kind = FAULT_CYCLE[fault % len(FAULT_CYCLE)]
            fault += 1
            delay = ACCEPT_THEN_TIMEOUT_DELAY_S if kind == "accept_then_timeout" else None
            setup.sim.inject(f"{method} {ORDER_PATH}", kind, delay_s=delay)
            soak.faults_injected[f"{method} {kind}"] += 1
        began = time.perf_counter()
        setup.sim.pin(setup.market.closes(i))
        soak.pin_ms.append((time.perf_counter() - began) * 1e3)
        before = _reconcile_counts(soak.engine)
        began = time.perf_counter()
        tick = setup.market.tick(i)
        report = soak.engine.on_tick(tick)
        tick_end = time.perf_counter()
        soak.tick_ms.append((tick_end - began) * 1e3)
        _note_reconcile(soak, before)
        soak.engine.sink.request_flush()  # as the service: the flusher writes off the tick
        began = time.perf_counter()
        save_state(soak.engine, setup.state_dir)
        soak.save_ms.append((time.perf_counter() - began) * 1e3)
        soak.ledger.after_tick(soak.engine, tick, report)
        began_quiet = time.perf_counter()
        if k == restart_at:
            _restart(soak, i + 1)
        else:
            # on 1m bars the broker has a minute before the next tick: let it finish (the
            # figure counts from the tick's end, save_state included, as in the service)
            quiet = wait_quiet(soak.broker)
            soak.quiet_ms.append(quiet + (began_quiet - tick_end) * 1e3)
        began_idle = time.perf_counter()
        soak.engine.sink.wait_idle(60.0)  # the flush ends within the minute as well
        soak.flush_wait_ms.append((time.perf_counter() - began_idle) * 1e3)
        state = soak.engine.state.effective_state.name
        equity = soak.engine.state.equity_usd
        if not soak.states or soak.states[-1][1] != state:
            soak.states.append((k, state, round(equity, 2)))
        if soak.last_equity is not None and soak.last_equity - equity > soak.largest_drop[1]:
            soak.largest_drop = (k, soak.last_equity - equity)
        soak.last_equity = equity
        if reconcile_every and k % reconcile_every == reconcile_every - 1:
            soak.reconcile_off_tick(overlap=overlap)
        if k % rss_every == 0 or k == ticks - 1:
            soak.rss.append(
                {
                    "tick": k,
                    "rss_mb": rss_mb(),
                    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    "sim_rss_mb": setup.sim.rss_mb(),
                    "spool_depth": soak.engine.sink.spool_depth,
                    "queued": soak.engine.sink.queued,
                    "engine_equity_usd": round(equity, 2),
                    "wall_s": time.perf_counter(),
                }
            )
            print(f"soak tick {k}/{ticks}: {soak.rss[-1]}", file=sys.stderr, flush=True)
    soak.join_reader()
    soak.quiet_ms.append(wait_quiet(soak.broker, 120.0))
    soak.engine.apply_reports(soak.broker.drain())


def _reconcile_counts(engine: HamiltonEngine) -> dict[str, float]:
    registry = engine.metrics.registry
    return {
        r: registry.get_sample_value(names.RECONCILE_TOTAL, {"result": r}) or 0.0
        for r in ("applied", "drift", "deferred", "failed")
    }


def _note_reconcile(soak: Soak, before: Mapping[str, float]) -> None:
    after = _reconcile_counts(soak.engine)
    changed = {r: after[r] - before[r] for r in after if after[r] != before[r]}
    if not changed:
        return
    for result, n in changed.items():
        soak.reconciles[result] += int(n)
    for family in soak.engine.metrics.registry.collect():
        if family.name != names.RECONCILE_DRIFT:
            continue
        for sample in family.samples:
            if sample.labels.get("symbol") == "cash":
                soak.max_cash_drift_usd = max(soak.max_cash_drift_usd, abs(sample.value))
            else:
                soak.max_position_drift = max(soak.max_position_drift, abs(sample.value))


def _restart(soak: Soak, until: int) -> None:
    """As a restart of the service: the state saved after the tick (orders may be in flight),
    the old broker stopped and the events flushed (the service's stop); a new broker and engine
    restored from the saved state, windows refilled, restored orders settled and the exchange
    reconciled (``hamilton_exec.runtime.wiring.build_service``)."""
    began = time.perf_counter()
    setup, old = soak.setup, soak.engine
    soak.join_reader()
    saved = json.loads((save_state(old, setup.state_dir)).read_text())
    in_flight = len(old.broker.open_orders())
    soak.broker.close()
    flushed = old.sink.close()
    soak.broker = live_broker(setup.config, setup.events)
    engine = setup.engine(soak.broker, until)
    engine.restore(saved)
    soak.ledger.watch(engine)
    before = _reconcile_counts(engine)
    reconcile_at_start(engine, fresh_start=False)
    soak.engine = engine
    _note_reconcile(soak, before)
    del old
    settle_long_lived_heap("bench_soak_restart", setup.served.id)
    soak.restart = {
        "at_tick": until - HISTORY - 1,
        "orders_in_flight_at_save": in_flight,
        "orders_restored": len(saved["broker"].get("orders", [])),
        "events_in_final_flush": flushed.events_written,
        "spool_after_final_flush": flushed.spooled,
        "restart_s": time.perf_counter() - began,
    }


def _slope(key: str, points: Sequence[Mapping[str, float]]) -> float | None:
    """Least-squares slope of ``key`` over the points' ticks, per 1000 ticks."""
    if len(points) < 3:
        return None
    x = np.array([p["tick"] for p in points], dtype=np.float64)
    y = np.array([p[key] for p in points], dtype=np.float64)
    return float(np.polyfit(x, y, 1)[0] * 1000)


def _library_counts(library: BrainLibrary) -> dict[str, int]:
    with library.engine.connect() as connection:
        events = connection.execute(
            text("SELECT count(*), count(DISTINCT symbol || '|' || timestamp) FROM decision_events")
        ).one()
        executions = connection.execute(text("SELECT count(*) FROM order_executions")).scalar()
        outcomes = connection.execute(text("SELECT count(*) FROM trade_outcomes")).scalar()
    return {
        "decision_events": int(events[0]),
        "decision_events_distinct_symbol_bar": int(events[1]),
        "order_executions": int(executions or 0),
        "trade_outcomes": int(outcomes or 0),
    }


def _equity(soak: Soak, state: Mapping[str, Any]) -> dict[str, float]:
    """The engine's equity against the exchange's (USD-M wallet + unrealized PnL at the last
    pinned mids = the last closes)."""
    closes = soak.setup.market.closes(soak.setup.market.n - 1)
    unrealized = sum(
        amount * (closes.get(sid, entry) - entry)
        for sid, (amount, entry) in state["positions"].items()
    )
    risk = soak.engine.state
    return {
        "engine_equity_usd": risk.equity_usd,
        "engine_cash_usd": risk.cash_usd,
        "exchange_wallet_usd": float(state["wallet"]),
        "exchange_equity_usd": float(state["wallet"]) + unrealized,
        "engine_trading_state": str(risk.effective_state.name),
        "engine_open_positions": len(risk.positions),
        "exchange_open_positions": sum(1 for a, _ in state["positions"].values() if a),
    }


def _soak_figures(soak: Soak, ticks: int, wall_s: float) -> dict[str, Any]:
    coins = len(soak.setup.market.symbols)
    flushed = soak.engine.sink.close(timeout_s=60.0)
    counts = _library_counts(soak.setup.library)
    state = soak.setup.sim.state()
    per_cid = state["orders_per_client_id"]
    warm_from = max(120, ticks // 10)
    post = [p for p in soak.rss if p["tick"] >= warm_from]
    restart_tick = soak.restart.get("at_tick", ticks)
    return {
        "ticks": ticks,
        "coins": coins,
        "wall_s": wall_s,
        "tick_ms": stats(soak.tick_ms),
        "quiet_after_tick_ms": stats(soak.quiet_ms),
        "save_state_ms": stats(soak.save_ms),
        "flush_wait_after_quiet_ms": stats(soak.flush_wait_ms),
        "pin_mids_ms_first_100_ticks": stats(soak.pin_ms[:100]),
        "pin_mids_ms_last_100_ticks": stats(soak.pin_ms[-100:]),
        "risk_state_changes (tick, state, engine equity)": soak.states,
        "largest_one_tick_equity_drop (tick, usd)": soak.largest_drop,
        "library": counts,
        "decision_events_expected": ticks * coins,
        "no_lost_event": counts["decision_events"] == ticks * coins,
        "spool_after_final_flush": flushed.spooled,
        "exchange_orders": len(per_cid),
        "max_orders_per_client_id": max(per_cid.values(), default=0),
        "client_ids_with_more_than_one_order": sorted(c for c, n in per_cid.items() if n > 1),
        "orders": soak.ledger.summary(),
        "faults_injected": dict(soak.faults_injected),
        "faults_fired": state["fired"],
        "faults_pending_at_end": state["pending_faults"],
        "broker_events": dict(soak.setup.events.counts),
        "reconciles": dict(soak.reconciles),
        "reconcile_reads_failed": soak.reconcile_reads_failed,
        "max_abs_cash_drift_usd": soak.max_cash_drift_usd,
        "max_abs_position_drift_base": soak.max_position_drift,
        "equity_at_end": _equity(soak, state),
        "restart": soak.restart,
        "rss_series": soak.rss,
        "rss_warm_up_ticks": warm_from,
        "rss_slope_mb_per_1000_ticks": _slope("rss_mb", post),
        "rss_slope_mb_per_1000_ticks_before_restart": _slope(
            "rss_mb", [p for p in post if p["tick"] < restart_tick]
        ),
        "rss_slope_mb_per_1000_ticks_after_restart": _slope(
            "rss_mb", [p for p in post if p["tick"] > restart_tick]
        ),
        "sim_rss_slope_mb_per_1000_ticks": _slope("sim_rss_mb", post),
        "cost_accuracy": cost_accuracy(soak.ledger, state["fills"]),
    }


# --- main ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def logs_tapped() -> Iterator[LogTap]:
    tap = LogTap()
    configure_logging(fmt="json", service="hamilton", stream=tap)  # type: ignore[arg-type]
    yield tap


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--coins", type=int, default=400)
    parser.add_argument("--bars", type=int, default=24)
    parser.add_argument("--slow-ticks", type=int, default=4)
    parser.add_argument("--soak-hours", type=float, default=24.0)
    parser.add_argument("--soak-coins", type=int, default=400)
    parser.add_argument("--fault-every", type=int, default=10)
    parser.add_argument("--reconcile-every", type=int, default=0)
    parser.add_argument("--reconcile-overlap", action="store_true")
    parser.add_argument("--rss-every", type=int, default=60)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-soak", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "venue": "binance USD-M (linear) on the local simulator, taker 5 bps",
        "client_timeout_ms": CLIENT_TIMEOUT_MS,
        "targets": {"tick_p99_ms": 100.0},
    }
    with logs_tapped() as tap:
        if not args.skip_latency:
            began = time.perf_counter()
            figures["latency"] = run_latency(args.coins, args.bars, args.slow_ticks, tmp / "lat")
            figures["latency"]["wall_s"] = time.perf_counter() - began
            figures["latency"]["warnings"] = dict(tap.counts)
            tap.counts.clear()
        if not args.skip_soak:
            figures["soak"] = run_soak(
                args.soak_coins,
                args.soak_hours,
                fault_every=args.fault_every,
                reconcile_every=args.reconcile_every,
                overlap=args.reconcile_overlap,
                rss_every=args.rss_every,
                tmp=tmp / "soak",
            )
            figures["soak"]["warnings"] = dict(tap.counts)
            figures["soak"]["warning_samples"] = tap.samples
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for part in ("lat", "soak"):
            (Path(tmp) / part).mkdir()
        figures = run(args, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
