"""The live broker: ccxt orders off the tick path, exactly one order per decision.

:meth:`CcxtBroker.submit` validates (precision, the market's limits, the clock's skew) and
registers the order at once (``pending``, or ``rejected`` with a reason code); the exchange
work runs in a thread pool (``orders.workers``) driven by a pump thread, orders of one symbol
serialized (one in flight per symbol; a second non-reduce-only order is refused with
``order_pending`` like the paper broker, a reduce-only one waits behind it). Results arrive as
:class:`~hamilton_exec.execution.brokers.OrderReport` objects through :meth:`CcxtBroker.drain`. The
order lifecycle and the resend rules are in :mod:`hamilton_exec.execution.live_steps`.

Restarts: :meth:`to_dict` carries every non-final order (request, what was reported, send
times) and the reports not yet drained; after :meth:`restore` each is looked up by client id
before anything else, so a ``kill -9`` mid-order neither doubles nor forgets it. A decision
re-made after a restart (same bar, same id) must not be sent again if an earlier process sent
it: Binance refuses a duplicate client id only while that order is OPEN, so a filled one would
be doubled. With a :class:`~hamilton_exec.execution.send_journal.SendJournal` (the service always
passes one, in its state folder) every send is journalled before it leaves: an id the journal does
not know was never sent and goes out at once; a known one is looked up first. Without a
journal, EVERY new order is looked up before its first send, with this broker's start as the
latest moment an earlier process may have sent it (one lookup per order, and during the first
``recv_window_ms`` + margin after the start a wait until a "not found" is final).

API keys never reach logs, reports, exceptions or :meth:`to_dict`.
"""

import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from hamilton_exec.execution.brokers import ExchangeSnapshot, OrderReport, OrderRequest
from hamilton_exec.execution.exchange_clock import ExchangeClock, wall_time_s
from hamilton_exec.execution.live_client import (
    BROKER_CLOSED,
    CLOCK_SKEW,
    DUPLICATE_DECISION,
    ORDER_PENDING,
    REFUSED,
    BrokerMetric,
    ExchangeClient,
    MetricCallback,
    Redactor,
)
from hamilton_exec.execution.live_orders import (
    LiveOrder,
    Refusal,
    prepare,
    report_from_dict,
    report_to_dict,
)
from hamilton_exec.execution.live_snapshot import SnapshotReader, venue_symbol
from hamilton_exec.execution.live_steps import OrderStepper
from hamilton_exec.execution.send_journal import SendJournal
from trading_core.config.models import ExchangeSection, OrdersSection
from trading_core.observability.logging import get_logger

FINISHED_MEMORY = 2000  # final client ids remembered (a re-submitted decision is refused)
MAX_PUMP_ROUNDS = 10_000


def _log() -> Any:
    return get_logger(__name__)


class CcxtBroker:
    """:class:`~hamilton_exec.execution.brokers.Broker` over a ccxt exchange (see the module
    docstring).

    ``now`` is the local wall clock (s), ``sleep`` the snapshot's backoff wait; ``executor``
    replaces the thread pool and ``background=False`` the pump thread (tests call
    :meth:`pump` themselves); ``not_found_margin_ms`` is added to ``recv_window_ms`` before a
    lookup's "not found" counts as definitive: it must cover how long the exchange may take to
    show an order it accepted (at the latest ``recv_window_ms`` after the request's timestamp)
    to a lookup, plus the clock error of our timestamps."""

    name = "ccxt"

    def __init__(
        self,
        client: ExchangeClient,
        *,
        orders: OrdersSection,
        exchange: ExchangeSection,
        quote: str = "USDT",
        on_metric: MetricCallback | None = None,
        clock: ExchangeClock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = wall_time_s,
        executor: Executor | None = None,
        background: bool = True,
        not_found_margin_ms: int = 2000,
        journal: SendJournal | None = None,
    ) -> None:
        self.client = client
        self.orders = orders
        self.exchange = exchange
        self.quote = quote
        self._on_metric = on_metric
        self._now = now
        self.clock = clock or ExchangeClock.for_client(client, exchange, now=now)
        self._redact = Redactor(
            s.get_secret_value() for s in (exchange.api_key, exchange.api_secret) if s
        )
        self._lock = threading.RLock()
        self._orders: dict[str, LiveOrder] = {}
        self._lanes: dict[str, list[str]] = {}
        self._running: set[str] = set()
        self._reports: deque[OrderReport] = deque()
        self._finished: OrderedDict[str, str] = OrderedDict()
        self._started_at = now()
        self._closed = False
        self._syncing = False
        self._next_sync_try = 0.0
        self._owns_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(
            max_workers=orders.workers, thread_name_prefix="ccxt-broker"
        )
        self._stepper = OrderStepper(
            client=client,
            clock=self.clock,
            orders=orders,
            exchange=exchange,
            quote=quote,
            now=now,
            lock=self._lock,
            emit=self._emit,
            metric=self._metric,
            redact=self._redact,
            not_found_margin_ms=not_found_margin_ms,
            journal=journal,
        )
        self._journal = journal
        self._reader = SnapshotReader(
            client,
            exchange=exchange,
            market_type=orders.market_type,
            quote=quote,
            clock=self.clock,
            sleep=sleep,
            redact=self._redact,
            resync=self._stepper.resync,
        )
        self._wake = threading.Event()
        self._pump_thread: threading.Thread | None = None
        if background:
            self._pump_thread = threading.Thread(
                target=self._pump_loop, name="ccxt-broker-pump", daemon=True
            )
            self._pump_thread.start()

    # --- Broker protocol --------------------------------------------------------------------

    def submit(self, order: OrderRequest) -> OrderReport:
        live = LiveOrder(
            order, venue_symbol(order.symbol, self.orders.market_type), created_at=self._now()
        )
        live.due_at = live.created_at
        try:
            refusal = prepare(self.client, live) if self.client.markets is not None else None
        except Exception as exc:  # noqa: BLE001 - submit never raises: refused, logged
            refusal = Refusal(REFUSED, self._redact.error(exc))
        with self._lock:
            report = self._admit(live, refusal)
        self._metric_report(report, live.side)
        if report.status == "pending":
            self._wake.set()
        return report

    def _admit(self, live: LiveOrder, refusal: Refusal | None) -> OrderReport:
        known = self._orders.get(live.client_id)
        if self._closed:
            return live.report("rejected", reason=BROKER_CLOSED, detail="broker closed")
        if known is not None:
            return known.report("pending", detail="already in flight")
        if live.client_id in self._finished:
            detail = f"this decision's order is already final ({self._finished[live.client_id]})"
            return live.report("rejected", reason=DUPLICATE_DECISION, detail=detail)
        refused = self._gate(live, refusal)
        if refused is not None:
            return refused
        self._mark_possibly_sent(live, self._started_at)
        self._register(live)
        return live.report("pending")

    def _mark_possibly_sent(self, live: LiveOrder, latest_s: float) -> None:
        """``unknown`` (look it up before any send) when a process may have sent it: the
        journal's last send of that id, or, without a journal, any time up to ``latest_s``."""
        if self._journal is None:
            live.phase, live.sent_at = "unknown", latest_s
            return
        sent_at = self._journal.last_sent(live.client_id)
        if sent_at is not None:
            live.phase, live.sent_at = "unknown", sent_at

    def _gate(self, live: LiveOrder, refusal: Refusal | None) -> OrderReport | None:
        """The refusals before registering: clock skew, symbol busy, the market's rules."""
        reduce_only = live.request.reduce_only
        if not reduce_only and self.clock.synced and not self.clock.skew_ok:
            self._metric(BrokerMetric("clock_skew_refusal", live.symbol, live.side))
            self.clock.refuse(symbol=live.symbol, client_order_id=live.client_id)
            return live.report("rejected", reason=CLOCK_SKEW, detail="clock skew beyond bound")
        busy = self._lanes.get(live.symbol)
        if busy and not reduce_only:
            return live.report(
                "rejected", reason=ORDER_PENDING, detail=f"an order is already pending ({busy[0]})"
            )
        if refusal is not None:
            return live.report("rejected", reason=refusal.reason, detail=refusal.detail)
        return None

    def on_bar_open(self, symbol: str, open_price: float, opened_at: datetime) -> None:
        return None  # the exchange fills live orders

    def drain(self) -> list[OrderReport]:
        with self._lock:
            reports = list(self._reports)
            self._reports.clear()
        return reports

    def open_orders(self) -> tuple[OrderRequest, ...]:
        with self._lock:
            live = sorted(self._orders.values(), key=lambda o: (o.created_at, o.client_id))
            return tuple(o.request for o in live)

    def cancel_all(self, reason: str) -> None:
        """Cancel every open order except the reduce-only ones (the kill switch's flatten
        orders: they only take risk off, and the engine's kill skips a symbol whose flatten is
        in flight): one never sent at once, one on the exchange by client id, one of unknown
        state once a lookup finds it (reports follow through drain)."""
        with self._lock:
            for live in list(self._orders.values()):
                if live.request.reduce_only:
                    continue
                live.cancel_reason = live.cancel_reason or reason
                lane = self._lanes.get(live.symbol, [])
                stepping = live.symbol in self._running and lane[:1] == [live.client_id]
                if live.phase == "new" and not stepping:
                    live.phase = "final"
                    self._emit(live, live.report("canceled", reason=reason, detail="never sent"))
                else:
                    live.due_at = min(live.due_at, self._now())
        _log().warning("orders_cancel_all", reason=reason)
        self._wake.set()

    def snapshot(self, symbols: Sequence[str]) -> ExchangeSnapshot | None:
        return self._reader.read(symbols)

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "version": 1,
                "orders": [o.to_dict() for o in self._orders.values()],
                "reports": [report_to_dict(r) for r in self._reports],
                "finished": [[cid, status] for cid, status in self._finished.items()],
            }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Resume the saved orders: every one not known to be open is looked up before any
        send (``sent_at`` = now, an upper bound of a send the saved state may not show)."""
        now = self._now()
        restored = [LiveOrder.from_dict(dict(d)) for d in data.get("orders", [])]
        with self._lock:
            for cid, status in data.get("finished", []):
                self._remember(str(cid), str(status))
            self._reports.extend(report_from_dict(dict(r)) for r in data.get("reports", []))
            for live in sorted(restored, key=lambda o: o.created_at):
                if live.client_id in self._orders or live.final:
                    continue
                if live.phase != "open":  # it may have been sent after the save: look first
                    live.phase = "new"
                    self._mark_possibly_sent(live, now)
                live.due_at, live.attempts = now, 0
                self._register(live)
        _log().info("broker_restored", orders=len(restored))
        self._wake.set()

    def close(self) -> None:
        """Stop the pump and wait for the steps in flight (orders stay in the registry)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        if self._pump_thread is not None:
            self._pump_thread.join()
        if self._owns_executor:
            self._executor.shutdown(wait=True)
        if self._journal is not None:
            self._journal.close()  # the broker owns it: no send can follow

    # --- extras -----------------------------------------------------------------------------

    def connect(self) -> None:
        """Load the markets and measure the clock now (blocking, retried); optional: the
        first order does both when they are missing."""
        self._reader.call("load_markets", self.client.load_markets)
        self._reader.call("fetch_time", self.clock.sync)

    def pump(self) -> None:
        """Run the steps that are due (the pump thread calls this; tests call it by hand)."""
        with self._lock:
            if self._closed:
                return
        self._maybe_sync_clock()
        for _ in range(MAX_PUMP_ROUNDS):
            now = self._now()
            with self._lock:
                due = [
                    symbol
                    for symbol, lane in self._lanes.items()
                    if lane and symbol not in self._running and self._orders[lane[0]].due_at <= now
                ]
                self._running.update(due)
            if not due:
                return
            for symbol in due:
                self._executor.submit(self._run_lane, symbol)
        _log().error("broker_pump_rounds_exhausted", rounds=MAX_PUMP_ROUNDS)

    def next_due(self) -> float | None:
        """When the earliest waiting step is due (None: nothing waits)."""
        with self._lock:
            heads = [self._orders[lane[0]].due_at for lane in self._lanes.values() if lane]
        return min(heads) if heads else None

    # --- internals --------------------------------------------------------------------------

    def _register(self, live: LiveOrder) -> None:
        self._orders[live.client_id] = live
        self._lanes.setdefault(live.symbol, []).append(live.client_id)

    def _remember(self, client_id: str, status: str) -> None:
        self._finished[client_id] = status
        self._finished.move_to_end(client_id)
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)

    def _emit(self, live: LiveOrder, report: OrderReport) -> None:
        """Queue a report (the lock is held); a final one frees the symbol's lane."""
        self._reports.append(report)
        if report.final:
            self._orders.pop(live.client_id, None)
            lane = self._lanes.get(live.symbol, [])
            if live.client_id in lane:
                lane.remove(live.client_id)
            if lane:
                self._orders[lane[0]].due_at = min(self._orders[lane[0]].due_at, self._now())
            else:
                self._lanes.pop(live.symbol, None)
            self._remember(live.client_id, report.status)
        fill = report.fill
        (_log().info if report.status in ("pending", "filled") else _log().warning)(
            "order_report",
            symbol=report.symbol,
            client_order_id=report.client_order_id,
            status=report.status,
            reason=report.reason_code,
            qty=None if fill is None else fill.qty,
            price=None if fill is None else fill.price,
            detail=report.detail,
        )
        self._metric_report(report, live.side)
        self._wake.set()

    def _metric_report(self, report: OrderReport, side: str) -> None:
        self._metric(
            BrokerMetric("order_report", report.symbol, side, report.status, report.reason_code)
        )

    def _metric(self, metric: BrokerMetric) -> None:
        if self._on_metric is None:
            return
        try:
            self._on_metric(metric)
        except Exception as exc:  # noqa: BLE001 - a metrics bug must not stop trading
            _log().warning("broker_metric_failed", metric=metric.name, error=type(exc).__name__)

    def _run_lane(self, symbol: str) -> None:
        live: LiveOrder | None = None
        try:
            with self._lock:
                lane = self._lanes.get(symbol) or []
                live = self._orders.get(lane[0]) if lane else None
            if live is not None:
                self._stepper.step(live)
        except Exception as exc:  # noqa: BLE001 - a bug in a step: log it, try again later
            _log().error(
                "order_step_failed",
                symbol=symbol,
                error=self._redact.error(exc),
                trace=self._redact(traceback.format_exc(), limit=4000),
            )
            with self._lock:
                if live is not None and not live.final:
                    live.due_at = self._now() + self.orders.poll_interval_s
        finally:
            with self._lock:
                self._running.discard(symbol)
            self._wake.set()

    def _maybe_sync_clock(self) -> None:
        now = self._now()
        with self._lock:
            if self._syncing or now < self._next_sync_try or not self.clock.sync_due:
                return
            self._syncing = True
        self._executor.submit(self._sync_clock)

    def _sync_clock(self) -> None:
        ok = self.clock.maybe_sync()
        with self._lock:
            self._syncing = False
            retry_s = 0.0 if ok else max(self.exchange.retry_backoff_s, 0.5) * 4
            self._next_sync_try = self._now() + retry_s

    def _pump_loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
            self.pump()
            due = self.next_due()
            wait_s = self.orders.poll_interval_s if due is None else due - self._now()
            self._wake.wait(min(max(wait_s, 0.005), self.orders.poll_interval_s))
            self._wake.clear()
