"""Wiring: config + settings -> a ready :class:`HamiltonService` (used by the CLI and tests).

Active coins: ``settings.symbols`` when given, else the coins with production models of the
timeframe in the latest release (sorted), else the source's first ``engine.active_coins``
symbols; capped at ``engine.active_coins``. The set is fixed for the run: a later release
changes the models of these coins; coins it adds are logged and traded after a restart.

A saved state (``state_dir``) is resumed: the risk state, each coin's memory, pending orders and
the trade ledger come back, the windows are refilled from the source up to the last decided
bar, and the feed continues after it.

Live (``--live``): a :class:`~hamilton_exec.execution.live_broker.CcxtBroker` over a ccxt client
built from ``data.exchange`` (keys from the environment, ``sandbox`` -> ccxt's sandbox mode,
``base_url`` -> e.g. the local exchange simulator), the exchange's clock measured first and
used by the market data (a candle is closed when the EXCHANGE says so), then, once the orders
restored from the state have reached a known state, the exchange's balances, positions and
open orders become the truth of the risk state (:meth:`HamiltonEngine.reconcile_now`).
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hamilton_exec.accounting.event_store import EventSink
from hamilton_exec.execution.brokers import Broker, PaperBroker
from hamilton_exec.execution.exchange_clock import ExchangeClock
from hamilton_exec.execution.live_broker import CcxtBroker
from hamilton_exec.execution.live_client import BrokerMetric
from hamilton_exec.execution.send_journal import SendJournal
from hamilton_exec.market_data.feeds import Feed, PollingFeed, ReplayFeed
from hamilton_exec.market_data.stream_feed import StreamingFeed
from hamilton_exec.market_data.window import utc_ms
from hamilton_exec.runtime.heap import settle_long_lived_heap
from hamilton_exec.runtime.release_sensor import ReleaseSensor, export_training_metrics, warm_start
from hamilton_exec.runtime.service import HamiltonService, load_state
from hamilton_exec.settings import HamiltonSettings
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from hamilton_exec.tick.hamilton_engine import HamiltonEngine
from trading_core.brain import BrainLibrary
from trading_core.config.models import EngineConfig
from trading_core.errors import CoinEngineError, ConfigError
from trading_core.market.ccxt_source import CcxtSource, build_ccxt_client
from trading_core.market.source import MarketDataSource
from trading_core.market.sources import make_source
from trading_core.observability.logging import get_logger

SEND_JOURNAL_FILE = "order_journal.jsonl"


def _log() -> Any:
    return get_logger(__name__)


@dataclass
class Prepared:
    service: HamiltonService
    after_ms: int | None


def choose_symbols(
    config: EngineConfig,
    settings: HamiltonSettings,
    source: MarketDataSource,
    production_coins: Sequence[str],
) -> tuple[str, ...]:
    listed = source.list_symbols()
    if settings.symbols:
        unknown = [s for s in settings.symbols if s not in listed]
        if unknown:
            raise ConfigError(f"symbols {unknown} are not listed by source {source.name!r}")
        return tuple(sorted(settings.symbols))
    quote = config.engine.quote
    from_release = [f"{c}/{quote}" for c in production_coins if f"{c}/{quote}" in listed]
    chosen = from_release or listed
    return tuple(sorted(chosen[: config.engine.active_coins]))


def build_service(
    config: EngineConfig,
    settings: HamiltonSettings,
    *,
    library: BrainLibrary | None = None,
    source: MarketDataSource | None = None,
    broker: Broker | None = None,
    metrics: HamiltonMetrics | None = None,
) -> Prepared:
    """Everything wired and warm, ready for ``await prepared.service.run(after_ms=...)``."""
    metrics = metrics or HamiltonMetrics(venue=config.cost_model.venue)
    clock: ExchangeClock | None = None
    if broker is None and settings.mode == "live":
        live = _live_broker(config, settings, metrics)
        broker, clock = live, live.clock
    if source is None:
        source = _live_source(config, clock) if clock is not None else make_source(config)
    sink = EventSink(
        library,
        settings.events_spool,
        flush_timeout_s=settings.flush_timeout_s,
        on_spool=lambda count: metrics.count_error("event_sink", "EventsSpooled"),
        on_depth=metrics.events_spool_depth.set,
    )
    probe = _Probe(config, settings, library, metrics)
    symbols = choose_symbols(config, settings, source, probe.production_coins())
    saved = load_state(settings.state_dir)
    engine = HamiltonEngine(
        config,
        settings,
        symbols,
        sink=sink,
        metrics=metrics,
        broker=broker or PaperBroker(),
        now=_start_time(settings),
    )
    engine.exchange_clock = clock
    if probe.served is not None:
        engine.swap_release(probe.served)
    after_ms = None
    if saved is not None:
        engine.restore(saved)
        after_ms = min(engine.last_open_ms.values()) if engine.last_open_ms else None
    feed = _feed(config, settings, source, engine, clock)
    resume = None if after_ms is None else utc_ms(after_ms + settings.bar_ms)
    histories = {s: feed.history(s, before=resume) for s in symbols}
    btc = (
        feed.history(engine.btc_symbol, before=resume)
        if engine.btc_symbol in feed.known_symbols()
        else None
    )
    warm_start(engine, histories, btc_history=btc, funding=feed.funding(), memories=saved is None)
    if settings.mode == "live":
        reconcile_at_start(engine, fresh_start=saved is None)
    if library is not None:
        export_training_metrics(library, metrics)
    settle_long_lived_heap("hamilton_ready", engine.release.id if engine.release else None)
    _log().info(
        "hamilton_ready",
        symbols=len(symbols),
        timeframe=settings.timeframe,
        mode=settings.mode,
        release_id=engine.release.id if engine.release else None,
        resumed_after=after_ms,
    )
    service = HamiltonService(engine, feed, library=library, refused=probe.refused)
    return Prepared(service, after_ms)


def reconcile_at_start(engine: HamiltonEngine, *, fresh_start: bool) -> None:
    """Wait (up to the order timeout and a bit) for the orders restored from the state to
    reach a known state, then make the exchange the truth of the risk state. If orders are
    still in flight then, the reconcile is left to the periodic one (a fill counted twice is
    worse than a late reconcile)."""
    deadline = time.monotonic() + engine.config.hamilton.orders.timeout_s + 5.0
    while engine.broker.open_orders() and time.monotonic() < deadline:
        engine.apply_reports(engine.broker.drain())
        time.sleep(0.1)
    seq = engine.quiet_order_seq()
    if seq is None:
        _log().warning("reconcile_deferred", open_orders=len(engine.broker.open_orders()))
        return
    snapshot = engine.broker.snapshot(engine.symbols)
    if snapshot is not None and not engine.reconcile_now(
        snapshot, seq=seq, fresh_start=fresh_start
    ):
        _log().warning("reconcile_deferred", open_orders=len(engine.broker.open_orders()))


class _Probe:
    """The first release poll, before the engine exists (it decides the active coins)."""

    def __init__(
        self,
        config: EngineConfig,
        settings: HamiltonSettings,
        library: BrainLibrary | None,
        metrics: HamiltonMetrics,
    ) -> None:
        self.served = None
        self.refused: dict[int, str] = {}
        if library is None:
            return
        shell = _Shell(config, settings, metrics)
        sensor = ReleaseSensor(library, shell, after_swap=False)  # type: ignore[arg-type]
        sensor.poll()
        self.served = shell.release
        self.refused = sensor.refused

    def production_coins(self) -> list[str]:
        return sorted(self.served.production) if self.served is not None else []


class _Shell:
    """Just enough of an engine for a first poll (gates, settings, metrics, swap)."""

    def __init__(
        self, config: EngineConfig, settings: HamiltonSettings, metrics: HamiltonMetrics
    ) -> None:
        from trading_core.regime import RegimeGates

        self.settings, self.metrics = settings, metrics
        self.base_gates = RegimeGates.from_config(config.regime_gates)
        self.release: Any = None

    def swap_release(self, served: Any) -> None:
        self.release = served


def _live_broker(
    config: EngineConfig, settings: HamiltonSettings, metrics: HamiltonMetrics
) -> CcxtBroker:
    """The live broker over its own ccxt client (markets of ``hamilton.orders.market_type``),
    connected: markets loaded and the exchange clock measured before anything is decided;
    its send journal lives in the state folder (:mod:`hamilton_exec.execution.send_journal`)."""
    exchange = config.data.exchange
    orders = config.hamilton.orders
    client = build_ccxt_client(exchange, market_types=(orders.market_type,))
    clock = ExchangeClock.for_client(client, exchange)
    broker = CcxtBroker(
        client,
        orders=orders,
        exchange=exchange,
        quote=config.engine.quote,
        on_metric=_broker_metric(metrics),
        clock=clock,
        journal=SendJournal(settings.state_dir / SEND_JOURNAL_FILE),
    )
    try:
        broker.connect()
    except CoinEngineError:
        broker.close()
        raise
    metrics.clock_offset.set(clock.offset_ms)
    return broker


def _broker_metric(metrics: HamiltonMetrics) -> Callable[[BrokerMetric], None]:
    """The broker's own signals as engine_error_rate{engine, error_type}; its order reports
    are counted by the engine when it drains them (hamilton_orders_total...)."""

    def on_metric(metric: BrokerMetric) -> None:
        if metric.name == "order_report":
            return
        component = "exchange_clock" if metric.name == "clock_skew_refusal" else "broker"
        metrics.count_error(component, metric.name)

    return on_metric


def _live_source(config: EngineConfig, clock: ExchangeClock) -> CcxtSource:
    """Market data judged on the exchange's clock (a candle is closed by exchange time)."""
    return CcxtSource(config.data.exchange, quote=config.engine.quote, clock=clock.now)


def _start_time(settings: HamiltonSettings) -> datetime:
    if settings.replay is not None:
        return settings.replay.start
    return datetime.now(UTC)


def _feed(
    config: EngineConfig,
    settings: HamiltonSettings,
    source: MarketDataSource,
    engine: HamiltonEngine,
    clock: ExchangeClock | None = None,
) -> Feed:
    if settings.replay is not None:
        return ReplayFeed(
            source,
            engine.symbols,
            settings.timeframe,
            start=settings.replay.start,
            end=settings.replay.end,
            history_bars=settings.history_bars,
            speed=settings.replay.speed,
            extra_symbols=(engine.btc_symbol,),
        )
    now = clock.now if clock is not None else (lambda: datetime.now(UTC))
    market_data = config.hamilton.market_data
    if market_data.feed == "stream" and config.data.source == "ccxt":
        return StreamingFeed(
            build_ccxt_client(config.data.exchange, market_types=("spot",), streaming=True),
            source,
            engine.symbols,
            settings.timeframe,
            history_bars=settings.history_bars,
            settings=market_data,
            clock=now,
            metrics=engine.metrics.market,
            on_error=lambda stream, exc: engine.metrics.count_error("market_data", exc),
        )
    if market_data.feed == "stream":
        _log().info(
            "feed_polling",
            reason=f"hamilton.market_data.feed: stream needs data.source: ccxt (a venue); "
            f"data.source is {config.data.source!r}, so its candles are polled",
        )
    return PollingFeed(
        source,
        engine.symbols,
        settings.timeframe,
        history_bars=settings.history_bars,
        poll_interval_s=settings.market_poll_interval_s,
        grace_s=3 * settings.market_poll_interval_s,
        clock=now,
        on_error=lambda symbol, exc: engine.metrics.count_error("market_data", exc),
    )
