"""The send half of the live order state machine, and what every step shares.

:class:`StepCore` holds the collaborators and the shared moves (absorb an exchange answer and
report the fill increment, finish an order, back off); :class:`SendSteps` sends a ``new``
order: validated (precision, limits), the clock measured and within its skew bound (not for a
reduce-only order), a spot reduce-only capped by the held base balance, then ``create_order``
with the decision's client id. The order is marked ``unknown`` BEFORE the call, so a crash or
a ``to_dict`` in the middle of a send can never lose that it may exist. A failed send is
classified (:func:`hamilton_exec.execution.live_client.classify_send_error`): uncertain or duplicate
-> looked up; 429/418 -> sent again after a backoff (``rate_limited`` past ``max_retries``);
-1021 -> clock resync and one resend (``clock_skew`` if it happens again); any other refusal
-> ``rejected`` with its reason code.
"""

import threading
from collections.abc import Callable
from typing import Any

from hamilton_exec.execution.brokers import OrderReport, OrderStatus
from hamilton_exec.execution.exchange_clock import ExchangeClock
from hamilton_exec.execution.live_client import (
    CLOCK_SKEW,
    NOTHING_TO_REDUCE,
    RATE_LIMITED,
    TIMEOUT,
    BrokerMetric,
    ExchangeClient,
    Redactor,
    classify_send_error,
    rejection_reason,
)
from hamilton_exec.execution.live_orders import LiveOrder, exchange_time, prepare
from hamilton_exec.execution.send_journal import SendJournal
from trading_core.config.models import ExchangeSection, OrdersSection
from trading_core.market.exchange_calls import backoff_delay
from trading_core.market.schema import split_symbol
from trading_core.observability.logging import get_logger
from trading_core.risk import Fill

FINAL_CCXT_STATUSES = frozenset({"closed", "canceled", "expired", "rejected"})


def _log() -> Any:
    return get_logger(__name__)


class StepCore:
    """Collaborators and shared moves of :class:`hamilton_exec.execution.live_steps.OrderStepper`
    (the broker owns the lock, the registry and the report queue: ``emit`` runs with the lock
    held)."""

    def __init__(
        self,
        *,
        client: ExchangeClient,
        clock: ExchangeClock,
        orders: OrdersSection,
        exchange: ExchangeSection,
        quote: str,
        now: Callable[[], float],
        lock: threading.RLock,
        emit: Callable[[LiveOrder, OrderReport], None],
        metric: Callable[[BrokerMetric], None],
        redact: Redactor,
        not_found_margin_ms: int,
        journal: SendJournal | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.orders = orders
        self.exchange = exchange
        self.quote = quote
        self._now = now
        self._lock = lock
        self._emit = emit
        self._metric = metric
        self._redact = redact
        self.not_found_margin_ms = not_found_margin_ms
        self.journal = journal

    def resync(self) -> None:
        """After an InvalidNonce: ccxt's own time difference and the clock's offset."""
        self.client.options["adjustForTimeDifference"] = True
        try:
            self.client.load_time_difference()
        except Exception as exc:  # noqa: BLE001 - a failed resync is logged, the order waits
            _log().warning("time_resync_failed", error=self._redact.error(exc))
        try:
            self.clock.sync()
        except Exception as exc:  # noqa: BLE001
            _log().warning("time_resync_failed", error=self._redact.error(exc))

    def _lookup_step(self, order: LiveOrder) -> None:
        raise NotImplementedError  # OrderStepper

    def _fetch(self, order: LiveOrder) -> dict[str, Any]:
        return self.client.fetch_order(
            "", order.market_symbol, {"origClientOrderId": order.client_id}
        )

    def _progress(self, order: LiveOrder, answer: dict[str, Any]) -> None:
        base = split_symbol(order.symbol)[0]
        with self._lock:
            if order.final:
                return
            status = order.absorb(answer, quote=self.quote, base=base)
            fill = order.take_increment(exchange_time(answer, self.clock.now()))
            order.attempts = order.failed_lookups = 0
            if status in FINAL_CCXT_STATUSES:
                final, reason = order.final_status(status)
                self._finish(order, final, fill, reason=reason)
                return
            order.phase = "open"
            wait_s = 0.0 if order.cancel_reason else self.orders.poll_interval_s
            order.due_at = self._now() + wait_s
            if fill is not None:
                self._emit(order, order.report("pending", fill))

    def _finish(
        self,
        order: LiveOrder,
        status: OrderStatus,
        fill: Fill | None = None,
        *,
        reason: str = "",
        detail: str = "",
    ) -> None:
        with self._lock:
            if order.final:
                return
            order.phase = "final"
            self._emit(order, order.report(status, fill, reason=reason, detail=detail))

    def _retry_later(self, order: LiveOrder) -> None:
        with self._lock:
            order.attempts += 1
            order.due_at = self._now() + self._backoff(order.attempts)

    def _backoff(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failed try (1-based; the first waits the base)."""
        return backoff_delay(self.exchange.retry_backoff_s, max(attempt - 1, 0))

    def _past_deadline(self, order: LiveOrder) -> bool:
        return self._now() >= order.created_at + self.orders.timeout_s


class SendSteps(StepCore):
    """Sending a ``new`` order (see the module docstring)."""

    def _send_step(self, order: LiveOrder) -> None:
        with self._lock:
            cancel = order.cancel_reason
        if cancel:
            self._finish(order, "canceled", reason=cancel, detail="never sent")
            return
        if self._past_deadline(order):
            self._finish(order, "canceled", reason=TIMEOUT, detail="not sent before the timeout")
            return
        if not self._ready_to_send(order):
            return
        request = order.request
        if not request.reduce_only and not self.clock.skew_ok:
            self._metric(BrokerMetric("clock_skew_refusal", order.symbol, order.side))
            self.clock.refuse(symbol=order.symbol, client_order_id=order.client_id)
            self._finish(order, "rejected", reason=CLOCK_SKEW, detail="clock skew beyond bound")
            return
        if not order.prepared:
            refusal = prepare(self.client, order)
            if refusal is not None:
                self._finish(order, "rejected", reason=refusal.reason, detail=refusal.detail)
                return
        spot_reduce = request.reduce_only and self.orders.market_type == "spot"
        if spot_reduce and not order.clamped and not self._clamp_to_balance(order):
            return
        self._send(order)

    def _ready_to_send(self, order: LiveOrder) -> bool:
        """Markets loaded and the clock measured (else: try again later)."""
        try:
            if self.client.markets is None:
                self.client.load_markets()
            if not self.clock.synced or self.clock.sync_due:
                self.clock.sync()
        except Exception as exc:  # noqa: BLE001 - retried with backoff
            self._metric(BrokerMetric("exchange_error", order.symbol, status="prepare"))
            _log().warning(
                "order_send_deferred", symbol=order.symbol, error=self._redact.error(exc)
            )
            self._retry_later(order)
            return False
        return True

    def _clamp_to_balance(self, order: LiveOrder) -> bool:
        """Spot reduce-only: sell no more than the held base (a spot account has no short)."""
        base = split_symbol(order.symbol)[0]
        try:
            balance = self.client.fetch_balance()
        except Exception as exc:  # noqa: BLE001 - retried with backoff
            self._metric(BrokerMetric("exchange_error", order.symbol, status="fetch_balance"))
            _log().warning("order_send_deferred", symbol=order.symbol, error=type(exc).__name__)
            self._retry_later(order)
            return False
        held = float((balance.get(base) or {}).get("free") or 0.0)
        if order.request.signed_qty > 0 or held <= 0.0:
            detail = f"held {base} {held}: nothing to reduce on spot"
            self._finish(order, "rejected", reason=NOTHING_TO_REDUCE, detail=detail)
            return False
        refusal = prepare(self.client, order, base_qty=min(abs(order.request.signed_qty), held))
        if refusal is not None:
            self._finish(order, "rejected", reason=NOTHING_TO_REDUCE, detail=refusal.detail)
            return False
        order.clamped = True
        return True

    def _send(self, order: LiveOrder) -> None:
        request = order.request
        params: dict[str, Any] = {"newClientOrderId": order.client_id}
        if request.post_only:
            params["postOnly"] = True  # ccxt: spot LIMIT_MAKER, perps timeInForce GTX
        if request.reduce_only and self.orders.market_type == "linear":
            params["reduceOnly"] = True
        with self._lock:
            if order.final:
                return
            if order.cancel_reason:  # cancel_all raced this step: still never sent
                self._finish(order, "canceled", reason=order.cancel_reason, detail="never sent")
                return
            resend = order.sends > 0
            order.phase = "unknown"  # before the call: a crash mid-send leaves it uncertain
            order.sent_at = self._now()
            order.sends += 1
        if self.journal is not None:
            try:
                self.journal.record(order.client_id, order.sent_at)
            except OSError as exc:  # not journalled -> not sent (a crash could double it)
                _log().error("send_journal_failed", symbol=order.symbol, error=str(exc))
                self._metric(BrokerMetric("exchange_error", order.symbol, status="journal"))
                with self._lock:
                    order.phase, order.sends = "new", order.sends - 1
                self._retry_later(order)
                return
        if resend:
            why = order.resend_reason or "not_found"
            self._metric(BrokerMetric("order_resend", order.symbol, order.side, reason=why))
        _log().info(
            "order_send",
            symbol=order.symbol,
            client_order_id=order.client_id,
            side=order.side,
            type=request.order_type,
            amount=order.amount,
            price=order.price,
            attempt=order.sends,
        )
        try:
            answer = self.client.create_order(
                order.market_symbol,
                request.order_type,
                order.side,
                order.amount,
                order.price if request.order_type == "limit" else None,
                params,
            )
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            self._send_failed(order, exc)
            return
        self._progress(order, answer)

    def _send_failed(self, order: LiveOrder, exc: Exception) -> None:
        kind = classify_send_error(exc)
        error = self._redact.error(exc)
        self._metric(
            BrokerMetric("exchange_error", order.symbol, status="create_order", reason=kind)
        )
        _log().warning(
            "order_send_failed",
            symbol=order.symbol,
            client_order_id=order.client_id,
            kind=kind,
            error=error,
        )
        if kind in ("uncertain", "duplicate"):
            with self._lock:
                order.attempts = 0
            self._lookup_step(order)  # phase stays unknown: look it up, never resend blindly
            return
        with self._lock:
            order.phase = "new"  # refused: it is not on the exchange
            order.resend_reason = "invalid_nonce" if kind == "nonce" else kind
        if kind == "nonce":
            self.resync()
            if order.nonce_resends < 1:
                with self._lock:
                    order.nonce_resends += 1
                    order.due_at = self._now()
                return
            self._finish(order, "rejected", reason=CLOCK_SKEW, detail=f"after a resync: {error}")
        elif kind == "throttled":
            if order.attempts >= self.exchange.max_retries:
                self._finish(order, "rejected", reason=RATE_LIMITED, detail=error)
            else:
                self._retry_later(order)
        else:
            reason = rejection_reason(exc, post_only=order.request.post_only)
            self._finish(order, "rejected", reason=reason, detail=error)
