"""The live order state machine: one short step at a time, never a blind resend.

:class:`OrderStepper` moves one :class:`~hamilton_exec.execution.live_orders.LiveOrder` on by one
step (a send, a lookup, a poll or a cancel, each a few exchange calls at most) and says when the
order wants its next step (``order.due_at``). Waiting (backoff, polling) is never a sleep in a
worker thread: the broker's pump runs the step again when it is due.

Exactly one order per decision (the client order id is the decision's):

* a new order starts ``unknown`` (an earlier process may have sent it): it is looked up by
  client id first and sent only once that lookup's "not found" is final (see below);
* the order is marked ``unknown`` BEFORE ``create_order`` is called, so a crash or a
  ``to_dict`` in the middle of a send can never lose that it may exist;
* after an uncertain send (timeout, reset, 5xx, a parse error) it is looked up by client id,
  with exponential backoff; "not found" moves it back to ``new`` (sendable) only once the
  send's timestamp is older than ``recv_window_ms`` + a margin (Binance refuses a request
  older than its recvWindow, so a delayed copy can no longer be accepted); until then, and
  while lookups fail, it is never sent; past ``max_retries`` failed lookups it is flagged
  (``order_state_unknown``) and looked up every ``poll_interval_s``;
* 429/418 and -1021 (``InvalidNonce``) are refusals: the first is sent again after a backoff,
  the second after a clock resync, once.
"""

from typing import Any

import ccxt

from hamilton_exec.execution.live_client import TIMEOUT, BrokerMetric
from hamilton_exec.execution.live_orders import LiveOrder
from hamilton_exec.execution.live_send import FINAL_CCXT_STATUSES, SendSteps
from trading_core.observability.logging import get_logger


def _log() -> Any:
    return get_logger(__name__)


class OrderStepper(SendSteps):
    """Steps orders for :class:`hamilton_exec.execution.live_broker.CcxtBroker`."""

    def step(self, order: LiveOrder) -> None:
        with self._lock:
            phase = order.phase
        if phase == "new":
            self._send_step(order)
        elif phase == "unknown":
            self._lookup_step(order)
        elif phase == "open":
            self._poll_step(order)

    # --- unknown: look it up --------------------------------------------------------------

    def _lookup_step(self, order: LiveOrder) -> None:
        with self._lock:
            cancel = order.cancel_reason
        if cancel or self._past_deadline(order):
            self._cancel_quietly(order)
        try:
            answer = self._fetch(order)
        except ccxt.OrderNotFound:
            if self._definitely_absent(order):
                (_log().warning if order.sends else _log().debug)(
                    "order_not_on_exchange",
                    symbol=order.symbol,
                    client_order_id=order.client_id,
                    sent_ago_ms=self._sent_ago_ms(order),
                )
                with self._lock:
                    order.phase, order.attempts, order.due_at = "new", 0, self._now()
                    order.resend_reason = "not_found"
            else:
                self._lookup_failed(order, "not_found")
            return
        except Exception as exc:  # noqa: BLE001 - lookups are retried, never a resend
            if isinstance(exc, ccxt.InvalidNonce):
                self.resync()
            self._lookup_failed(order, type(exc).__name__)
            return
        self._progress(order, answer)

    def _lookup_failed(self, order: LiveOrder, why: str) -> None:
        """Look again after a backoff. A "not found" that is not final yet is an expected
        answer (it becomes final within recvWindow + margin); a failed lookup is not: past
        ``max_retries`` of them the order is flagged unknown and looked up every poll."""
        with self._lock:
            order.attempts += 1
            delay = self._backoff(order.attempts)
            if why == "not_found":  # do not sleep past the moment "not found" becomes final
                left_s = (self._definitive_after_ms() - self._sent_ago_ms(order)) / 1000.0
                order.due_at = self._now() + min(delay, max(left_s, 0.0) + 0.05)
                return
            order.failed_lookups += 1
            flag = order.failed_lookups > self.exchange.max_retries and not order.unknown_flagged
            if order.failed_lookups > self.exchange.max_retries:
                order.unknown_flagged = True
                delay = self.orders.poll_interval_s
            order.due_at = self._now() + delay
        self._metric(BrokerMetric("exchange_error", order.symbol, status="lookup", reason=why))
        if flag:
            self._metric(BrokerMetric("order_state_unknown", order.symbol, order.side))
            _log().error(
                "order_state_unknown",
                symbol=order.symbol,
                client_order_id=order.client_id,
                lookups=order.failed_lookups,
                last=why,
                action="kept pending, looked up every poll, never resent",
            )

    def _definitive_after_ms(self) -> float:
        return float(self.exchange.recv_window_ms + self.not_found_margin_ms)

    def _sent_ago_ms(self, order: LiveOrder) -> float:
        return (self._now() - (order.sent_at or 0.0)) * 1000.0

    def _definitely_absent(self, order: LiveOrder) -> bool:
        return order.sent_at is None or self._sent_ago_ms(order) > self._definitive_after_ms()

    # --- open: poll, cancel at the timeout ------------------------------------------------

    def _poll_step(self, order: LiveOrder) -> None:
        with self._lock:
            cancel = order.cancel_reason
        if cancel or self._past_deadline(order):
            self._cancel_step(order)
            return
        try:
            answer = self._fetch(order)
        except Exception as exc:  # noqa: BLE001 - it exists: poll again
            if isinstance(exc, ccxt.InvalidNonce):
                self.resync()
            self._metric(
                BrokerMetric(
                    "exchange_error", order.symbol, status="poll", reason=type(exc).__name__
                )
            )
            with self._lock:
                order.due_at = self._now() + self.orders.poll_interval_s
            return
        self._progress(order, answer)

    def _cancel_step(self, order: LiveOrder) -> None:
        with self._lock:
            order.cancel_reason = order.cancel_reason or TIMEOUT
        cancel_answer = self._cancel_quietly(order)
        try:
            answer = self._fetch(order)
        except Exception as exc:  # noqa: BLE001 - fall back on the cancel's answer
            status = None if cancel_answer is None else cancel_answer.get("status")
            if cancel_answer is not None and status in FINAL_CCXT_STATUSES:
                self._progress(order, cancel_answer)
                return
            self._metric(
                BrokerMetric(
                    "exchange_error", order.symbol, status="cancel", reason=type(exc).__name__
                )
            )
            self._retry_later(order)
            return
        self._progress(order, answer)
        with self._lock:
            if order.phase == "open":  # the cancel did not take: again at the next step
                order.due_at = self._now() + min(
                    self._backoff(max(order.attempts, 1)), self.orders.poll_interval_s
                )

    def _cancel_quietly(self, order: LiveOrder) -> dict[str, Any] | None:
        """Cancel by client id; an unknown order (already final, or never there) is fine."""
        try:
            return self.client.cancel_order(
                "", order.market_symbol, {"origClientOrderId": order.client_id}
            )
        except ccxt.OrderNotFound:
            return None
        except Exception as exc:  # noqa: BLE001 - the lookup that follows decides
            if isinstance(exc, ccxt.InvalidNonce):
                self.resync()
            _log().warning(
                "order_cancel_failed",
                symbol=order.symbol,
                client_order_id=order.client_id,
                error=self._redact.error(exc),
            )
            return None
