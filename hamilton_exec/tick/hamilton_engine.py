"""Hamilton's synchronous core: one call per closed bar (a "tick") for every active coin.

Per tick, in this order (the backtest's order for one coin, extended to many in sorted symbol
order): pending paper orders fill at this bar's open -> each coin's new bar joins its window ->
the newest bars of all coins are prepared in one batch -> each coin is decided (one
DecisionEvent per coin per bar, a hold with ``missing_bar`` or ``stale_data`` when the coin has
no fresh bar) -> approved orders go to the broker (never in shadow mode) -> metrics, events
and the persisted state are updated. Beside each coin's decision, the release's shadow
challengers trade virtual books (:mod:`hamilton_exec.tick.shadow_books`), never the broker. The
release in force is read once per tick, so a release swapped in by the sensor applies from the next
tick on, for every coin at once.
"""

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import polars as pl

from hamilton_exec.accounting.event_store import EventSink
from hamilton_exec.accounting.ledger import TradeLedger
from hamilton_exec.execution.brokers import (
    Broker,
    ExchangeSnapshot,
    OrderReport,
    PaperBroker,
    order_request,
)
from hamilton_exec.execution.exchange_clock import ExchangeClock
from hamilton_exec.execution.orders_flow import OrderBook
from hamilton_exec.market_data.market_books import (
    STALE_BOOK_REASON,
    BookStatusLog,
    book_age_s,
    book_for_decision,
)
from hamilton_exec.market_data.window import CoinWindow, Tick, utc_ms
from hamilton_exec.settings import HamiltonSettings
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from hamilton_exec.tick.coin_decisions import (
    CoinDecision,
    CoinMemory,
    DecisionContext,
    decide_prepared,
    prepare_decisions,
)
from hamilton_exec.tick.engine_orders import OrderDesk
from hamilton_exec.tick.forecast import ReleaseForests
from hamilton_exec.tick.newest_bars import (
    FEATURE_BARS,
    NewestBarPreparer,
    NewestBars,
    history_bars_needed,
    regime_frame_bars,
)
from hamilton_exec.tick.served_release import ServedRelease
from hamilton_exec.tick.shadow_books import ShadowTrader
from trading_core.brain import decision_event_id
from trading_core.config.models import EngineConfig
from trading_core.consensus import ConsensusParams
from trading_core.costs import BookStatus, BookTop, CostParams
from trading_core.decision import (
    BarInputs,
    ConsensusRow,
    Decision,
    DecisionConfig,
    EventOrigin,
    decide_bar,
    decision_event,
)
from trading_core.errors import ConfigError
from trading_core.events import DecisionEvent
from trading_core.observability.logging import get_logger
from trading_core.regime import RegimeGates
from trading_core.risk import RiskEnforcer, RiskState
from trading_core.types import Action, Regime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BTC_BASE = "BTC"


def _log() -> Any:
    return get_logger(__name__)


@dataclass
class TickReport:
    """What one tick produced."""

    open_ms: int
    decisions: dict[str, Decision] = field(default_factory=dict)
    events: list[DecisionEvent] = field(default_factory=list)
    orders: list[OrderReport] = field(default_factory=list)
    shadow_events: list[DecisionEvent] = field(default_factory=list)


def decision_context(config: EngineConfig, timeframe: str) -> DecisionContext:
    return DecisionContext(
        params=ConsensusParams.from_config(config.consensus),
        cost_params=CostParams.from_config(config.cost_model),
        decision_config=DecisionConfig.from_engine_config(config, timeframe=timeframe),
        horizon_bars=config.training.model.label_horizon_bars,
        ml_scale_bps=config.consensus.ml_scale_bps,
        risk_preset=config.risk.preset,
    )


class HamiltonEngine(OrderDesk):
    """State and per-tick flow of one Hamilton process (see the module docstring)."""

    def __init__(
        self,
        config: EngineConfig,
        settings: HamiltonSettings,
        symbols: Sequence[str],
        *,
        sink: EventSink,
        metrics: HamiltonMetrics,
        broker: Broker | None = None,
        state: RiskState | None = None,
        now: datetime | None = None,
    ) -> None:
        if not symbols:
            raise ConfigError("no active symbols: give --symbols or serve a release with models")
        self.config, self.settings = config, settings
        self.symbols = tuple(sorted(symbols))
        self.context = decision_context(config, settings.timeframe)
        self.base_gates = RegimeGates.from_config(config.regime_gates)
        self.enforcer = RiskEnforcer(self.context.decision_config.limits)
        capacity = settings.history_bars
        self.windows = {s: CoinWindow(s, capacity) for s in self.symbols}
        quote = self.symbols[0].split("/")[1]
        self.btc_symbol = f"{BTC_BASE}/{quote}"
        known = self.windows.get(self.btc_symbol)  # an empty window is falsy: test for None
        self.btc_window = known if known is not None else CoinWindow(self.btc_symbol, capacity)
        self.funding: dict[str, pl.DataFrame] = {}
        self.memories = {
            s: CoinMemory.fresh(self.context.params, self.context.horizon_bars)
            for s in self.symbols
        }
        start = now or datetime.now(UTC)
        self.state = state or self.enforcer.initial_state(config.risk.initial_capital_usd, start)
        if config.risk.kill_switch and not self.state.kill_switch:
            self.state = self.enforcer.set_kill_switch(
                self.state, on=True, reason="config: risk.kill_switch"
            )
        self.kill_reason = "config: risk.kill_switch" if config.risk.kill_switch else ""
        self.broker: Broker = broker if broker is not None else PaperBroker()
        self.order_book = OrderBook()
        # kill/resume/reconcile arrive from other threads (control endpoint, reconcile loop):
        # they and the tick take this lock, so each applies between ticks, never inside one
        self.lock = threading.RLock()
        self.pending_snapshot: ExchangeSnapshot | None = None
        self.pending_snapshot_seq = 0
        self.order_seq = 0
        self.clock_offset_ms = 0
        self.exchange_clock: ExchangeClock | None = None  # live: the measured exchange clock
        self.last_tick_at: datetime | None = None
        self.sink, self.metrics = sink, metrics
        self.ledger = TradeLedger()
        self.shadow = ShadowTrader(
            self.context,
            self.enforcer,
            capital_usd=config.risk.initial_capital_usd,
            bar_ms=settings.bar_ms,
            sink=sink,
        )
        self.release: ServedRelease | None = None
        self.last_open_ms: dict[str, int] = {}
        self.ticks = 0
        detection = config.regime_gates.detection
        self.preparer = NewestBarPreparer(
            timeframe=settings.timeframe,
            detection=detection,
            feature_bars=FEATURE_BARS,
            # a window shorter than the regime's frame frames it on the window (the reference)
            regime_frame_bars=min(regime_frame_bars(detection), capacity),
            warm_from=history_bars_needed(detection) - 1,
            ml_scale_bps=self.context.ml_scale_bps,
        )
        self.book_log = BookStatusLog()
        self.forests: ReleaseForests | None = None
        self._metric_children: dict[tuple[int, tuple[str, ...]], Any] = {}

    # --- release ------------------------------------------------------------------------

    def swap_release(self, served: ServedRelease) -> None:
        """Serve ``served`` from the next tick on (one reference assignment: atomic)."""
        previous = self.release
        self.forests = ReleaseForests.build(served)  # before the release: a tick reads both
        self.release = served
        age_s = (datetime.now(UTC) - served.release.created_at).total_seconds()
        self.metrics.set_release(served.id, max(age_s, 0.0), previous.id if previous else None)

    def gates(self) -> RegimeGates:
        return self.release.gates if self.release else self.base_gates

    # --- one tick -----------------------------------------------------------------------

    def on_tick(self, tick: Tick) -> TickReport:
        with self.lock:
            return self._on_tick(tick)

    def _on_tick(self, tick: Tick) -> TickReport:
        started = time.perf_counter()
        release = self.release
        report = TickReport(tick.open_ms)
        self.shadow.sync(release)
        drained_at = time.perf_counter()
        self._bar_opens(tick)
        self.apply_reports(self.broker.drain())
        self._apply_pending_snapshot(tick.now)
        self.metrics.latency.labels("broker", "drain").observe(
            (time.perf_counter() - drained_at) * 1e3
        )
        fresh = self._append(tick)
        self._decide_fresh(fresh, tick, release, report)
        for symbol in self.symbols:
            if symbol not in fresh:
                self._decide_missing(symbol, tick, release, report)
        self._after_tick(tick, report)
        self.metrics.latency.labels("hamilton", "tick").observe(
            (time.perf_counter() - started) * 1e3
        )
        return report

    def _bar_opens(self, tick: Tick) -> None:
        for symbol in self.symbols:
            candle = tick.candles.get(symbol)
            if candle is not None:
                self.broker.on_bar_open(symbol, candle.open, utc_ms(candle.open_ms))

    def _append(self, tick: Tick) -> list[str]:
        fresh = []
        for symbol, candle in sorted(tick.candles.items()):
            window = self.windows.get(symbol)
            if window is None and symbol == self.btc_symbol:
                window = self.btc_window
            if window is None or candle.open_ms <= (window.last_open_ms or -1):
                continue
            window.append(candle)
            if symbol in self.memories:
                fresh.append(symbol)
        return fresh

    def _decide_fresh(
        self, fresh: list[str], tick: Tick, release: ServedRelease | None, report: TickReport
    ) -> None:
        if not fresh:
            return
        prepared_at = time.perf_counter()
        batch = self.prepare_newest([self.windows[s] for s in fresh])
        self.metrics.latency.labels("features", "prepare_batch").observe(
            (time.perf_counter() - prepared_at) * 1e3
        )
        gates = release.gates if release else self.base_gates
        origin = self._origin(release)
        books = [self._book(symbol, tick) for symbol in fresh]
        invalid = [
            self._stale_reason(symbol, tick) or _book_reason(status)
            for symbol, (_, status) in zip(fresh, books, strict=True)
        ]
        for i, symbol in enumerate(fresh):
            if release is not None and release.challengers(symbol.split("/")[0]):
                # before the production decision: a pair starting now copies the coin's
                # memory as the production decision found it
                report.shadow_events += self.shadow.step(
                    batch, i, release, self.memories[symbol], gates,
                    invalid_reason=invalid[i], origin=origin,
                )  # fmt: skip
        prepared = prepare_decisions(
            batch,
            [(release.coin(s.split("/")[0]) if release else None) or _no_models() for s in fresh],
            [self.memories[s] for s in fresh],
            self.context,
            gates,
            invalid_reasons=invalid,
            forests=self._forests_for(release),
        )
        for prepared_bar, (top, status) in zip(prepared, books, strict=True):
            started = time.perf_counter()
            bar = prepared_bar
            if status is not BookStatus.NO_FEED:
                bar = replace(bar, inputs=replace(bar.inputs, book=top, book_status=status))
            outcome, self.state = decide_prepared(bar, self.state, self.context, origin=origin)
            self._record(outcome, tick, report)
            self._child(self.metrics.latency, "decision", "decide_coin").observe(
                (time.perf_counter() - started) * 1e3
            )

    def _forests_for(self, release: ServedRelease | None) -> ReleaseForests | None:
        forests = self.forests  # the sensor may swap both meanwhile: read once, then match
        if release is None or forests is None or forests.release_id != release.id:
            return None
        return forests

    def prepare_newest(self, windows: list[CoinWindow]) -> NewestBars:
        """The newest bars of ``windows`` (:mod:`hamilton_exec.tick.newest_bars`, the only path)."""
        return self.preparer.prepare(windows, btc_window=self.btc_window, funding=self.funding)

    def _book(self, symbol: str, tick: Tick) -> tuple[BookTop | None, BookStatus]:
        """The coin's live book for this decision and its status (market_books docstring)."""
        limit_s = self.config.hamilton.market_data.max_book_age_s
        top, status = book_for_decision(tick.books, symbol, tick.now, limit_s)
        if tick.books is not None:
            age_s = book_age_s(tick.books, symbol, tick.now)
            self._child(self.metrics.book_age, symbol).set(min(age_s, 1e9))
            if status is not BookStatus.FRESH:
                self._child(self.metrics.stale_market_data, "book").inc()
            self.book_log.note(symbol, status, age_s, limit_s)
        return top, status

    def _stale_reason(self, symbol: str, tick: Tick) -> str:
        last = self.windows[symbol].last_open_ms
        if last is None:
            return "no_data"
        age_s = (tick.now - utc_ms(last + self.settings.bar_ms)).total_seconds()
        self._child(self.metrics.staleness, symbol).set(max(age_s, 0.0))
        limit_s = self.settings.max_staleness_bars * self.settings.bar_ms / 1000
        return "stale_data" if age_s > limit_s else ""

    def _decide_missing(
        self, symbol: str, tick: Tick, release: ServedRelease | None, report: TickReport
    ) -> None:
        """No fresh bar: a hold for the expected bar, priced at the last known close."""
        window = self.windows[symbol]
        reason = "no_data" if len(window) == 0 else "missing_bar"
        self._stale_reason(symbol, tick)
        self._child(self.metrics.stale_market_data, "bar").inc()
        if len(window) == 0:
            return  # nothing known yet: no price to mark, the coin is not tradable
        bar = BarInputs(
            timestamp=utc_ms(tick.open_ms),
            decided_at=utc_ms(tick.open_ms + self.settings.bar_ms),
            symbol=symbol,
            regime=Regime.ILLIQUID,
            consensus=ConsensusRow(0.0, 0.0, 0.0, Action.HOLD),
            expected_return_bps=0.0,
            price=window.close_at(0),
            atr=0.0,
            volatility_bps=0.0,
            bar_volume=0.0,
            data_valid=False,
            invalid_reason=reason,
        )
        decision, self.state = decide_bar(bar, self.state, config=self.context.decision_config)
        event = decision_event(
            decision,
            bar,
            risk_preset=self.context.risk_preset,
            origin=self._origin(release),
        )
        report.decisions[symbol] = decision
        report.events.append(event)
        self._count(decision, event)
        self.sink.add_event(event, release_id=release.id if release else None, shadow=self._shadow)

    @property
    def _shadow(self) -> bool:
        return self.settings.mode == "shadow"

    def _origin(self, release: ServedRelease | None) -> EventOrigin:
        return EventOrigin(
            release_id=release.id if release else None,
            mode=self.settings.mode,
            extras={"timeframe": self.settings.timeframe},
        )

    def _record(self, outcome: CoinDecision, tick: Tick, report: TickReport) -> None:
        decision, event = outcome.decision, outcome.event
        report.decisions[decision.symbol] = decision
        report.events.append(event)
        release_id = event.release_id
        self.sink.add_event(event, release_id=release_id, shadow=self._shadow)
        self._count(decision, event)
        regime = event.regime
        self._child(self.metrics.confidence, regime).observe(outcome.inputs.consensus.confidence)
        self.metrics.set_spread(
            decision.symbol, decision.costs.spread_bps, decision.spread_origin.value
        )
        if decision.spread_fallback:
            self._child(self.metrics.spread_fallbacks, decision.spread_fallback).inc()
        if decision.action is Action.HOLD or self._shadow:
            return
        self.metrics.observe_costs(event.costs.to_dict() if event.costs else {})
        self.ledger.on_order(event, outcome.weights, outcome.signals, shadow=False)
        orders = self.config.hamilton.orders
        order = order_request(
            decision,
            outcome.inputs,
            event_id=decision_event_id(event, shadow=False),
            order_type=orders.type,
            post_only=orders.post_only,
        )
        report.orders.append(self._submit(order))

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: a lookup per coin per bar adds up at 400 coins
        (prometheus_client keeps one child per label set, so the cached one is the same)."""
        key = (id(metric), labels)
        child = self._metric_children.get(key)
        if child is None:
            child = self._metric_children[key] = metric.labels(*labels)
        return child

    def _count(self, decision: Decision, event: DecisionEvent) -> None:
        self._child(self.metrics.decisions, event.action, event.regime).inc()
        if decision.denial is not None:
            self.metrics.denials.labels(decision.denial.value).inc()

    def _after_tick(self, tick: Tick, report: TickReport) -> None:
        self.ticks += 1
        self.last_tick_at = tick.now
        if self.exchange_clock is not None:
            self.clock_offset_ms = self.exchange_clock.offset_ms
            self.metrics.clock_offset.set(self.clock_offset_ms)
        self._set_book_gauges()
        self.last_open_ms.update({s: tick.open_ms for s in report.decisions})
        self.metrics.equity.set(self.state.equity_usd)
        self.metrics.set_risk_state(self.state.effective_state)
        for (engine, symbol, regime), pnl in self.ledger.engine_pnl_usd.items():
            self.metrics.engine_pnl.labels(engine, symbol, regime).set(pnl)
        if self.release is not None:
            age_s = (tick.now - self.release.release.created_at).total_seconds()
            self.metrics.release_age.set(max(age_s, 0.0))

    # --- persistence --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything a restart needs (JSON-able): risk state, memories, orders, ledger."""
        with self.lock:
            return self._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        return {
            "timeframe": self.settings.timeframe,
            "symbols": list(self.symbols),
            "risk_state": self.state.to_dict(),
            "memories": {s: m.to_dict() for s, m in self.memories.items()},
            "last_open_ms": self.last_open_ms,
            "broker": self.broker.to_dict(),
            "broker_name": self.broker.name,
            "orders": self.order_book.to_dict(),
            "kill_reason": self.kill_reason,
            "clock_offset_ms": self.clock_offset_ms,
            "last_tick_at": self.last_tick_at.isoformat() if self.last_tick_at else None,
            "ledger": self.ledger.to_dict(),
            "release_id": self.release.id if self.release else None,
            "shadow": self.shadow.to_dict(),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Continue from :meth:`snapshot` (same timeframe and symbols, else ValueError)."""
        if data.get("timeframe") != self.settings.timeframe:
            raise ValueError(
                f"saved state is for timeframe {data.get('timeframe')!r}, not "
                f"{self.settings.timeframe!r}: use another --state-dir"
            )
        self.state = RiskState.from_dict(data["risk_state"])
        for symbol, memory in dict(data.get("memories") or {}).items():
            if symbol in self.memories:
                self.memories[symbol] = CoinMemory.from_dict(memory)
        self.last_open_ms = {s: int(v) for s, v in dict(data.get("last_open_ms") or {}).items()}
        if data.get("broker_name", self.broker.name) == self.broker.name:
            self.broker.restore(dict(data.get("broker") or {}))
            self.order_book = OrderBook.from_dict(dict(data.get("orders") or {}))
        else:
            # paper state never resumes as live orders (nor the reverse): start that part empty
            _log().warning(
                "broker_state_not_resumed", saved=data.get("broker_name"), now=self.broker.name
            )
        self.kill_reason = str(data.get("kill_reason") or "")
        self.clock_offset_ms = int(data.get("clock_offset_ms") or 0)
        if self.config.risk.kill_switch and not self.state.kill_switch:
            self.state = self.enforcer.set_kill_switch(
                self.state, on=True, reason="config: risk.kill_switch"
            )
            self.kill_reason = self.kill_reason or "config: risk.kill_switch"
        self.ledger = TradeLedger.from_dict(dict(data.get("ledger") or {}))
        self.shadow.restore(dict(data.get("shadow") or {}))


def _book_reason(status: BookStatus) -> str:
    """A coin whose streamed book is stale or missing takes no new orders on this bar."""
    return STALE_BOOK_REASON if status in (BookStatus.STALE, BookStatus.MISSING) else ""


def _no_models() -> Any:
    from hamilton_exec.tick.served_release import NO_MODELS

    return NO_MODELS


__all__ = ["HamiltonEngine", "Tick", "TickReport", "decision_context"]
