"""A strict in-process ccxt-like Binance for the live broker's unit and property tests.

Binance semantics it keeps: a client order id is refused as a duplicate ONLY while that order
is open (a filled or cancelled one can be "sent again" and is then a second order); a signed
request whose timestamp is more than ``recvWindow`` behind the server clock (or 1 s ahead) is
refused with ``InvalidNonce`` - also when it arrives late over the network; a lookup may
answer "not found" although the order was accepted (``visibility_lag_ms``, faults); limit
orders fill in parts; spot balances move with fills; fetch_order carries no commission.

Faults are scripted per call kind (``create``, ``fetch``, ``cancel``, ``read``) and consumed in
order. ``accepted[cid]`` counts the orders the exchange accepted per client id: the property
the broker must keep is ``<= 1``.
"""

import threading
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import ccxt
from pydantic import SecretStr

from hamilton_exec.execution.brokers import OrderReport, OrderRequest, client_order_id
from hamilton_exec.execution.exchange_clock import ExchangeClock
from hamilton_exec.execution.live_broker import CcxtBroker
from hamilton_exec.execution.live_client import BrokerMetric
from hamilton_exec.execution.send_journal import SendJournal
from trading_core.config.models import ExchangeSection, OrdersSection

RECV_WINDOW_MS = 5_000


class SimulatedCrash(BaseException):
    """Raised from inside a call to model the process dying there (nothing catches it)."""


class InlineExecutor(Executor):
    """Runs each submitted call at once in the caller's thread (deterministic tests)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "Future[Any]":
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class FakeTime:
    """The shared local clock (seconds); ``sleep`` advances it."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self.t = start
        self.lock = threading.Lock()

    def now(self) -> float:
        with self.lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.t += max(seconds, 0.0)


def _market(symbol: str, *, linear: bool = False) -> dict[str, Any]:
    base, rest = symbol.split("/")
    quote = rest.split(":")[0]
    step, tick = ("0.001", "0.1") if linear else ("0.00001", "0.01")
    return {
        "id": (base + quote),
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "type": "swap" if linear else "spot",
        "spot": not linear,
        "contract": linear,
        "linear": linear or None,
        "contractSize": 1.0 if linear else None,
        "active": True,
        "precision": {"amount": float(step), "price": float(tick)},
        "limits": {
            "amount": {"min": float(step), "max": 9000.0},
            "market": {"min": float(step), "max": 100.0},
            "price": {"min": float(tick), "max": 1_000_000.0},
            "cost": {"min": 100.0 if linear else 5.0, "max": None},
        },
    }


@dataclass
class FakeOrder:
    order_id: int
    cid: str
    symbol: str
    side: str
    type: str
    amount: float
    price: float | None
    accepted_ms: int
    post_only: bool = False
    reduce_only: bool = False
    status: str = "NEW"  # NEW PARTIALLY_FILLED FILLED CANCELED EXPIRED
    filled: float = 0.0
    cost: float = 0.0
    plan: deque[float] = field(default_factory=deque)  # fractions filled per lookup

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


_STATUS = {
    "NEW": "open",
    "PARTIALLY_FILLED": "open",
    "FILLED": "closed",
    "CANCELED": "canceled",
    "EXPIRED": "expired",
}


class FakeBinance:
    """ccxt-like sync client (the subset :class:`ExchangeClient` names)."""

    id = "binance"

    def __init__(self, time: FakeTime, *, offset_ms: int = 0) -> None:
        self.time = time
        self.offset_ms = offset_ms  # server - local
        self.options: dict[str, Any] = {"recvWindow": RECV_WINDOW_MS, "timeDifference": 0}
        self.markets: dict[str, Any] | None = None
        self._all_markets = {s: _market(s) for s in ("BTC/USDT", "ETH/USDT", "SOL/USDT")} | {
            "BTC/USDT:USDT": _market("BTC/USDT:USDT", linear=True)
        }
        self.marks = {"BTC": 42_000.0, "ETH": 2_500.0, "SOL": 150.0}
        self.balances: dict[str, float] = {"USDT": 100_000.0, "BTC": 0.5, "ETH": 0.0}
        self.positions: dict[str, float] = {}
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.orders: dict[str, list[FakeOrder]] = defaultdict(list)
        self.accepted: dict[str, int] = defaultdict(int)
        self.in_transit: list[tuple[int, int, dict[str, Any]]] = []  # (arrive_ms, ts, request)
        self.calls: list[tuple[str, str]] = []
        self.requests: list[dict[str, Any]] = []  # every create_order as it was called
        self.error_text = ""  # appended to every error message (e.g. a key, to test leaks)
        self.on_first_create: Callable[[], None] | None = None  # runs once, at the first send
        self.visibility_lag_ms = 0
        self.default_plan: tuple[float, ...] = ()  # limit orders: fractions per lookup
        self.lock = threading.RLock()
        self._next_id = 1

    # --- clocks -------------------------------------------------------------------------------

    def server_ms(self) -> int:
        return int(self.time.now() * 1000) + self.offset_ms

    def _request_ts(self) -> int:
        return int(self.time.now() * 1000) - int(self.options.get("timeDifference") or 0)

    def _check_ts(self, ts: int, server: int) -> None:
        window = int(self.options.get("recvWindow") or RECV_WINDOW_MS)
        if ts > server + 1000 or server - ts > window:
            raise ccxt.InvalidNonce(
                'binance {"code":-1021,"msg":"Timestamp for this request is outside of the '
                'recvWindow."}'
            )

    def _signed(self, kind: str, cid: str = "") -> str | None:
        """Deliver late requests, log the call, pop its fault, check the timestamp."""
        self._deliver()
        self.calls.append((kind, cid))
        fault = self.faults[kind].popleft() if self.faults[kind] else None
        if fault == "nonce":
            raise ccxt.InvalidNonce('binance {"code":-1021,"msg":"outside of the recvWindow"}')
        if fault == "crash":
            raise SimulatedCrash(kind)
        self._check_ts(self._request_ts(), self.server_ms())
        return fault

    def fetch_time(self, params: dict[str, Any] | None = None) -> int:
        with self.lock:
            self._deliver()
            self.calls.append(("time", ""))
            if self.faults["time"]:
                self.faults["time"].popleft()
                raise ccxt.RequestTimeout("binance GET time timed out")
            return self.server_ms()

    def load_time_difference(self, params: dict[str, Any] | None = None) -> int:
        with self.lock:
            self.options["timeDifference"] = int(self.time.now() * 1000) - self.server_ms()
            return int(self.options["timeDifference"])

    # --- markets ------------------------------------------------------------------------------

    def load_markets(self, reload: bool = False, params: dict[str, Any] | None = None) -> Any:
        with self.lock:
            fault = self.faults["markets"].popleft() if self.faults["markets"] else None
            if fault is not None:
                raise ccxt.RequestTimeout("binance GET exchangeInfo timed out")
            self.markets = dict(self._all_markets)
            return self.markets

    def market(self, symbol: str) -> dict[str, Any]:
        if self.markets is None:
            raise ccxt.ExchangeError("binance markets not loaded")
        if symbol not in self.markets:
            raise ccxt.BadSymbol(f"binance does not have market symbol {symbol}")
        market: dict[str, Any] = self.markets[symbol]
        return market

    def amount_to_precision(self, symbol: str, amount: float) -> str:
        step = Decimal(str(self.market(symbol)["precision"]["amount"]))
        value = (Decimal(str(amount)) / step).to_integral_value(ROUND_DOWN) * step
        if value <= 0:
            raise ccxt.InvalidOrder(
                f"binance amount of {symbol} must be greater than minimum amount precision"
            )
        return format(value.normalize(), "f")

    def price_to_precision(self, symbol: str, price: float) -> str:
        tick = Decimal(str(self.market(symbol)["precision"]["price"]))
        return format(((Decimal(str(price)) / tick).to_integral_value() * tick).normalize(), "f")

    # --- orders -------------------------------------------------------------------------------

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        params = dict(params or {})
        cid = str(params.get("newClientOrderId") or params.get("clientOrderId"))
        request = {"symbol": symbol, "type": type, "side": side, "amount": float(amount)}
        request |= {"price": price, "cid": cid, **params}
        with self.lock:
            hook, self.on_first_create = self.on_first_create, None
            if hook is not None:
                hook()
            self.market(symbol)
            self.requests.append(request | {"at": self.time.now()})
            ts = self._request_ts()
            fault = self._signed("create", cid)
            self._raise_named(fault)
            if fault in ("503_before", "timeout_before", "throttle", "reject"):
                raise {
                    "503_before": ccxt.ExchangeNotAvailable("binance 503 Service Unavailable"),
                    "timeout_before": ccxt.RequestTimeout("binance POST order timed out"),
                    "throttle": ccxt.DDoSProtection("binance 429 Too Many Requests"),
                    "reject": ccxt.InsufficientFunds(
                        "binance Account has insufficient balance for requested action."
                    ),
                }[fault]
            if fault is not None and fault.startswith("lost:"):  # arrives late, or never
                self.in_transit.append((self.server_ms() + int(fault[5:]), ts, request))
                raise ccxt.RequestTimeout("binance POST order timed out")
            order = self._accept(request, ts)
            if fault == "accept_then_timeout":
                raise ccxt.RequestTimeout("binance POST order timed out")
            if fault == "503_after":
                raise ccxt.OperationFailed('binance {"code":-1001,"msg":"Internal error"}')
            if fault == "reset_after":
                raise ccxt.NetworkError("binance ConnectionResetError(104)")
            if fault == "crash_after":
                raise SimulatedCrash("after accept")
            return self._unified(order, with_fee=True)

    def _deliver(self) -> None:
        now = self.server_ms()
        due = [item for item in self.in_transit if item[0] <= now]
        self.in_transit = [item for item in self.in_transit if item[0] > now]
        for arrive_ms, ts, request in due:
            try:
                self._check_ts(ts, arrive_ms)
                self._accept(request, ts, at_ms=arrive_ms)
            except ccxt.BaseError:
                pass  # refused on arrival (too old, duplicate, funds): the client never knows

    def _accept(self, request: dict[str, Any], ts: int, *, at_ms: int | None = None) -> FakeOrder:
        cid, symbol = request["cid"], request["symbol"]
        if any(o.open for o in self.orders[cid]):
            raise ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}')
        market = self.market(symbol)
        mark = self.marks[market["base"]]
        bid, ask = mark * (1 - 1e-4), mark * (1 + 1e-4)
        price, buy = request["price"], request["side"] == "buy"
        post_only = bool(request.get("postOnly"))
        if post_only and ((buy and price >= ask) or (not buy and price <= bid)):
            raise ccxt.OrderImmediatelyFillable("binance Order would immediately match and take.")
        amount = request["amount"]
        if request.get("reduceOnly"):
            held = self.positions.get(symbol, 0.0)
            if held == 0.0 or (held > 0) == buy:
                raise ccxt.InvalidOrder('binance {"code":-2022,"msg":"ReduceOnly rejected"}')
            amount = min(amount, abs(held))
        elif market["spot"]:
            self._check_funds(market, buy, amount, price or (ask if buy else bid))
        order = FakeOrder(
            self._next_id,
            cid,
            symbol,
            request["side"],
            request["type"],
            amount,
            price,
            self.server_ms() if at_ms is None else at_ms,
            post_only=post_only,
            reduce_only=bool(request.get("reduceOnly")),
            plan=deque(self.default_plan),
        )
        self._next_id += 1
        self.orders[cid].append(order)
        self.accepted[cid] += 1
        crosses = price is None or (buy and price >= ask) or (not buy and price <= bid)
        if crosses:
            self._fill(order, amount, ask if buy else bid)
        return order

    def _check_funds(self, market: dict[str, Any], buy: bool, amount: float, px: float) -> None:
        have = self.balances.get(market["quote" if buy else "base"], 0.0)
        need = amount * px if buy else amount
        if need > have + 1e-9:
            raise ccxt.InsufficientFunds(
                "binance Account has insufficient balance for requested action."
            )

    def _fill(self, order: FakeOrder, qty: float, price: float) -> None:
        qty = min(qty, order.amount - order.filled)
        if qty <= 0:
            return
        order.filled += qty
        order.cost += qty * price
        order.status = "FILLED" if order.filled >= order.amount - 1e-12 else "PARTIALLY_FILLED"
        market = self.market(order.symbol)
        sign = 1.0 if order.side == "buy" else -1.0
        if market["spot"]:
            self.balances[market["base"]] = self.balances.get(market["base"], 0.0) + sign * qty
            self.balances[market["quote"]] -= sign * qty * price + qty * price * 0.001
        else:
            self.positions[order.symbol] = self.positions.get(order.symbol, 0.0) + sign * qty

    def trade(self, cid: str, qty: float) -> None:
        """The market trades ``qty`` against the resting order ``cid`` (test control)."""
        with self.lock:
            order = self.orders[cid][-1]
            self._fill(order, qty, order.price or self.marks[order.symbol.split("/")[0]])

    def _latest(self, cid: str) -> FakeOrder:
        visible = [
            o
            for o in self.orders.get(cid, [])
            if self.server_ms() - o.accepted_ms >= self.visibility_lag_ms
        ]
        if not visible:
            raise ccxt.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}')
        return visible[-1]

    def fetch_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        cid = str((params or {}).get("origClientOrderId"))
        with self.lock:
            fault = self._signed("fetch", cid)
            self._raise_read_fault(fault)
            order = self._latest(cid)
            if order.open and order.plan:
                self._fill(order, order.amount * order.plan.popleft(), order.price or 1.0)
            return self._unified(order)

    def cancel_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        cid = str((params or {}).get("origClientOrderId"))
        with self.lock:
            fault = self._signed("cancel", cid)
            self._raise_read_fault(fault)
            orders = [o for o in self.orders.get(cid, []) if o.open]
            if not orders:
                raise ccxt.OrderNotFound('binance {"code":-2011,"msg":"Unknown order sent."}')
            orders[-1].status = "CANCELED"
            if fault == "timeout_after":
                raise ccxt.RequestTimeout("binance DELETE order timed out")
            return self._unified(orders[-1])

    def _raise_named(self, fault: str | None) -> None:
        """``raise:ClassName:message`` raises that ccxt error (message + ``error_text``)."""
        if fault is not None and fault.startswith("raise:"):
            _, name, message = [*fault.split(":", 2), ""][:3]
            raise getattr(ccxt, name)(f"binance {message} {self.error_text}".strip())

    def _raise_read_fault(self, fault: str | None) -> None:
        self._raise_named(fault)
        if fault == "not_found":
            raise ccxt.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}')
        if fault == "timeout":
            raise ccxt.RequestTimeout("binance GET order timed out")
        if fault == "503":
            raise ccxt.ExchangeNotAvailable("binance 503 Service Unavailable")
        if fault == "429":
            raise ccxt.RateLimitExceeded("binance 429")

    def _unified(self, order: FakeOrder, *, with_fee: bool = False) -> dict[str, Any]:
        average = order.cost / order.filled if order.filled else None
        return {
            "id": str(order.order_id),
            "clientOrderId": order.cid,
            "symbol": order.symbol,
            "side": order.side,
            "type": order.type,
            "status": _STATUS[order.status],
            "amount": order.amount,
            "filled": order.filled,
            "remaining": order.amount - order.filled,
            "cost": order.cost,
            "average": average,
            "price": order.price if order.price is not None else average,
            "timestamp": order.accepted_ms,
            "lastTradeTimestamp": order.accepted_ms if order.filled else None,
            "fee": {"cost": order.cost * 0.001, "currency": "USDT"} if with_fee else None,
            "fees": [],
        }

    # --- account ------------------------------------------------------------------------------

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        with self.lock:
            if symbol is None and self.options.get("fetchOpenOrders", {}).get(
                "warnWithoutSymbol", True
            ):
                raise ccxt.ExchangeError("binance fetchOpenOrders() WARNING: no symbol")
            fault = self._signed("read")
            self._raise_read_fault(fault)
            return [
                self._unified(o)
                for orders in self.orders.values()
                for o in orders
                if o.open and (symbol is None or o.symbol == symbol)
            ]

    def fetch_balance(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.lock:
            self._raise_read_fault(self._signed("read"))
            if (params or {}).get("type") == "swap":
                wallet = self.balances["USDT"]
                unrealized = 123.0
                info = {"assets": [{"asset": "USDT", "walletBalance": str(wallet)}]}
                return {"info": info, "total": {"USDT": wallet + unrealized}}
            totals = {k: v for k, v in self.balances.items()}
            return {
                "info": {},
                "total": totals,
                **{k: {"free": v, "used": 0.0, "total": v} for k, v in totals.items()},
            }

    def fetch_positions(
        self, symbols: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        with self.lock:
            self._raise_read_fault(self._signed("read"))
            return [
                {
                    "symbol": s,
                    "contracts": abs(q),
                    "contractSize": 1.0,
                    "side": "long" if q > 0 else "short",
                    "markPrice": self.marks[s.split("/")[0]],
                }
                for s, q in self.positions.items()
                if q and (symbols is None or s in symbols)
            ]


# --- the broker on the fake ---------------------------------------------------------------------

KEY = "sk-live-9f8e7d6c5b4a3210fedcba98"  # secret-looking: must never leak
SECRET = "zq-secret-0a1b2c3d4e5f60718293a4b5"  # noqa: S105 - a test value


@dataclass
class Rig:
    """A broker over the fake with an injected clock, an inline executor and no pump thread."""

    time: FakeTime
    fake: FakeBinance
    broker: CcxtBroker
    metrics: list[BrokerMetric]

    def settle(self, *, limit_s: float = 300.0) -> list[OrderReport]:
        """Pump (advancing the fake clock to each next due step) until nothing is open."""
        reports: list[OrderReport] = []
        end = self.time.now() + limit_s
        while True:
            self.broker.pump()
            reports += self.broker.drain()
            due = self.broker.next_due()
            if not self.broker.open_orders() or due is None or self.time.now() >= end:
                return reports
            self.time.advance(max(due - self.time.now(), 0.001))

    def restart(self, saved: dict[str, Any], **kwargs: Any) -> "Rig":
        """A new process: a new broker (started now) restored from ``saved``."""
        self.broker.close()
        rig = make_rig(time=self.time, fake=self.fake, age_s=0.0, **kwargs)
        rig.broker.restore(saved)
        return rig


def exchange_section(**overrides: Any) -> ExchangeSection:
    values: dict[str, Any] = {
        "api_key": SecretStr(KEY),
        "api_secret": SecretStr(SECRET),
        "max_retries": 3,
        "retry_backoff_s": 0.5,
        "recv_window_ms": RECV_WINDOW_MS,
        "max_clock_skew_ms": 1_000,
        "time_sync_interval_s": 300.0,
    }
    return ExchangeSection(**(values | overrides))


def make_rig(
    *,
    time: FakeTime | None = None,
    fake: FakeBinance | None = None,
    markets: bool = True,
    market_type: str = "spot",
    exchange: dict[str, Any] | None = None,
    orders: dict[str, Any] | None = None,
    age_s: float = 10.0,
    journal: Path | None = None,
) -> Rig:
    """A broker started ``age_s`` ago (a new order's first lookup answers "not found" at once
    only past recvWindow + margin after the start)."""
    time = time or FakeTime()
    fake = fake or FakeBinance(time)
    if markets and fake.markets is None:
        fake.load_markets()
    section = exchange_section(**(exchange or {}))
    order_section = OrdersSection(
        **(
            {"timeout_s": 30.0, "poll_interval_s": 1.0, "workers": 2, "market_type": market_type}
            | (orders or {})
        )
    )
    metrics: list[BrokerMetric] = []
    broker = CcxtBroker(
        fake,
        orders=order_section,
        exchange=section,
        quote="USDT",
        on_metric=metrics.append,
        clock=ExchangeClock.for_client(fake, section, now=time.now),
        now=time.now,
        sleep=time.sleep,
        executor=InlineExecutor(),
        background=False,
        journal=SendJournal(journal, now=time.now) if journal is not None else None,
    )
    time.advance(age_s)
    return Rig(time, fake, broker, metrics)


def order(
    time: FakeTime,
    qty: float = 0.01,
    *,
    symbol: str = "BTC/USDT",
    bar_ms: int | None = None,
    decided_at: float | None = None,
    **fields: Any,
) -> OrderRequest:
    """An approved decision's order, decided now (or at ``decided_at``)."""
    bar = bar_ms if bar_ms is not None else int(time.now() * 1000) // 3_600_000 * 3_600_000
    side = "buy" if qty > 0 else "sell"
    moment = decided_at if decided_at is not None else time.now()
    base = symbol.split("/", maxsplit=1)[0]
    price = {"BTC": 42_000.0, "ETH": 2_500.0, "SOL": 150.0}.get(base, 1.0)
    return OrderRequest(
        client_order_id=client_order_id(symbol, bar, side),
        symbol=symbol,
        signed_qty=qty,
        reference_price=price,
        price_adjust_bps=1.0,
        fee_bps=10.0,
        decided_at=datetime.fromtimestamp(moment, tz=UTC),
        **fields,
    )
