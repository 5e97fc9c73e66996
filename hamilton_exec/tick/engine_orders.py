"""The engine's side of its broker: fills and final reports into the risk state, the trade
ledger and the Brain Library's executions; the kill switch; the reconcile with the exchange.

A mixin of :class:`hamilton_exec.tick.hamilton_engine.HamiltonEngine` (kept apart to keep one
concept per module); the pure parts are in :mod:`hamilton_exec.execution.orders_flow`. Every public
method takes the engine's lock: the control endpoint and the reconcile loop call them from other
threads, and each applies between ticks, never inside one.
"""

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hamilton_exec.accounting.event_store import EventSink
from hamilton_exec.accounting.ledger import TradeLedger
from hamilton_exec.execution.brokers import Broker, ExchangeSnapshot, OrderReport, OrderRequest
from hamilton_exec.execution.orders_flow import OrderBook, flatten_orders, reconcile_state
from hamilton_exec.market_data.window import CoinWindow
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from hamilton_exec.tick.coin_decisions import DecisionContext
from trading_core.observability.logging import get_logger
from trading_core.risk import RiskEnforcer, RiskState


def _log() -> Any:
    return get_logger(__name__)


class OrderDesk:
    """Broker-facing methods of the engine (see the module docstring)."""

    broker: Broker
    order_book: OrderBook
    metrics: HamiltonMetrics
    ledger: TradeLedger
    sink: EventSink
    state: RiskState
    enforcer: RiskEnforcer
    context: DecisionContext
    lock: threading.RLock
    kill_reason: str
    pending_snapshot: ExchangeSnapshot | None
    pending_snapshot_seq: int
    order_seq: int  # +1 per order sent and per report applied: a snapshot's "as of"
    clock_offset_ms: int
    windows: dict[str, CoinWindow]
    symbols: tuple[str, ...]

    def _child(self, metric: Any, *labels: str) -> Any:
        raise NotImplementedError  # HamiltonEngine

    def apply_reports(self, reports: Sequence[OrderReport]) -> None:
        """Fills into the risk state and the trade ledger; final reports close the order's
        record (an execution for the Brain Library) and are metered by status and reason."""
        for report in reports:
            self.order_seq += 1
            order = self.order_book.get(report.client_order_id)
            if report.fill is not None:
                self._apply_fill(report)
            if order is None:
                _log().warning(
                    "order_report_unknown",
                    client_order_id=report.client_order_id,
                    status=report.status,
                    symbol=report.symbol,
                )
                continue
            execution = self.order_book.on_report(report)
            if execution is None:
                continue  # still pending: counted when it ends
            self.metrics.orders.labels(order.side.value, report.status).inc()
            self.metrics.order_reports.labels(report.status, report.reason_code or "none").inc()
            if execution.cost_error_bps is not None:
                self.metrics.cost_error.labels(self.metrics.venue).observe(execution.cost_error_bps)
            if report.status != "filled":
                # a refused or cancelled entry never opens the trade it was meant to
                self.ledger.cancel_entry(order.symbol, order.event_id)
            self.sink.add_execution(execution)

    def _apply_fill(self, report: OrderReport) -> None:
        if report.fill is None:
            return
        fill = report.fill
        before = self.state.positions.get(fill.symbol)
        self.state = self.enforcer.apply_fill(self.state, fill)
        after = self.state.positions.get(fill.symbol)
        outcome = self.ledger.on_fill(fill, before, after)
        if outcome is not None:
            self.sink.add_outcome(outcome)

    def kill(self, reason: str, now: datetime | None = None) -> list[OrderReport]:
        """The kill switch: HALTED (new risk denied), every open order cancelled, every
        position flattened with reduce-only market orders. Idempotent."""
        with self.lock:
            moment = now or datetime.now(UTC)
            self.state = self.enforcer.set_kill_switch(self.state, on=True, reason=reason)
            self.kill_reason = reason
            self.metrics.kill_switch.set(1.0)
            self.metrics.set_risk_state(self.state.effective_state)
            self.broker.cancel_all("kill_switch")
            self.apply_reports(self.broker.drain())  # the cancels known at once count now
            in_flight = {o.symbol for o in self.broker.open_orders() if o.reduce_only}
            orders = flatten_orders(self.state, moment, self.context.cost_params, skip=in_flight)
            reports = [self._submit(order) for order in orders]
            _log().warning(
                "kill_switch_on", reason=reason, flatten_orders=len(orders), at=moment.isoformat()
            )
            return reports

    def resume(self, reason: str) -> None:
        """Release the kill switch (the day's loss state still applies)."""
        with self.lock:
            self.state = self.enforcer.set_kill_switch(self.state, on=False, reason=reason)
            self.kill_reason = ""
            self.metrics.kill_switch.set(0.0)
            self.metrics.set_risk_state(self.state.effective_state)
            _log().warning("kill_switch_off", reason=reason)

    def quiet_order_seq(self) -> int | None:
        """The order sequence number to read a reconcile snapshot against, or None while
        orders are in flight (a snapshot read then would race their fills)."""
        with self.lock:
            self.apply_reports(self.broker.drain())
            return None if self.broker.open_orders() else self.order_seq

    def offer_snapshot(self, snapshot: ExchangeSnapshot, seq: int) -> None:
        """A reconcile snapshot read off the tick when the order sequence was ``seq``; applied
        at the next tick's start if no order moved since (else discarded)."""
        with self.lock:
            self.pending_snapshot, self.pending_snapshot_seq = snapshot, seq
            self.clock_offset_ms = snapshot.clock_offset_ms
            self.metrics.clock_offset.set(snapshot.clock_offset_ms)

    def reconcile_now(
        self, snapshot: ExchangeSnapshot, *, seq: int, fresh_start: bool = False
    ) -> bool:
        """Make the exchange's balances and positions the truth of the risk state (see
        :func:`hamilton_exec.execution.orders_flow.reconcile_state`). ``seq`` is
        :meth:`quiet_order_seq` before the snapshot was read: if an order was sent or reported
        since, the snapshot may predate fills the state already holds, so it is discarded
        (False; the next reconcile reads a fresh one)."""
        with self.lock:
            self.apply_reports(self.broker.drain())
            if self.order_seq != seq or self.broker.open_orders():
                self.metrics.reconciles.labels("deferred").inc()
                _log().info("reconcile_discarded", reason="orders moved since the snapshot")
                return False
            marks = {s: w.close_at(0) for s, w in self.windows.items() if len(w)}
            result = reconcile_state(
                self.state, snapshot, self.symbols, marks, fresh_start=fresh_start
            )
            self.state = result.state
            self.clock_offset_ms = snapshot.clock_offset_ms
            self.metrics.clock_offset.set(snapshot.clock_offset_ms)
            for symbol, drift in result.drift.items():
                self.metrics.reconcile_drift.labels(symbol).set(drift)
            # open orders on the exchange this process did not send (left alone, reported)
            foreign = sorted(
                cid
                for ids in snapshot.open_orders.values()
                for cid in ids
                if self.order_book.get(cid) is None
            )
            self.metrics.reconcile_drift.labels("foreign_open_orders").set(len(foreign))
            self.metrics.reconciles.labels("drift" if result.drifted else "applied").inc()
            log = _log().warning if result.drifted else _log().info
            log(
                "reconciled",
                drifted=result.drifted,
                drift={s: round(d, 10) for s, d in result.drift.items() if d},
                cash_usd=round(self.state.cash_usd, 2),
                positions=len(self.state.positions),
                open_orders=sum(len(v) for v in snapshot.open_orders.values()),
                foreign_open_orders=",".join(foreign[:20]),
            )
            if result.drifted:
                self.metrics.count_error("reconcile", "ReconcileDrift")
            return True

    def _apply_pending_snapshot(self, now: datetime) -> None:
        snapshot, self.pending_snapshot = self.pending_snapshot, None
        if snapshot is not None:
            self.reconcile_now(snapshot, seq=self.pending_snapshot_seq)

    def _submit(self, order: OrderRequest) -> OrderReport:
        started = time.perf_counter()
        self.order_seq += 1
        self.order_book.add(order)
        submitted = self.broker.submit(order)
        self.apply_reports([submitted])
        self._child(self.metrics.latency, "broker", "submit").observe(
            (time.perf_counter() - started) * 1e3
        )
        return submitted

    def _set_book_gauges(self) -> None:
        open_by_symbol: dict[str, int] = {}
        for order in self.broker.open_orders():
            open_by_symbol[order.symbol] = open_by_symbol.get(order.symbol, 0) + 1
        for symbol in self.symbols:
            position = self.state.positions.get(symbol)
            self._child(self.metrics.position_qty, symbol).set(position.qty if position else 0.0)
            self._child(self.metrics.position_notional, symbol).set(
                position.notional_usd if position else 0.0
            )
            self._child(self.metrics.open_orders, symbol).set(open_by_symbol.get(symbol, 0))
        self.metrics.kill_switch.set(1.0 if self.state.kill_switch else 0.0)
