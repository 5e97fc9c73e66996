"""The matching engine: orders against a synthetic book around the mid, spot and USD-M accounts.

Pure (no I/O, no clock): every call takes the server time ``now`` in ms; the caller holds a lock.

* The book: ``levels`` price levels each side, the best ``half_spread_bps`` from the mid, then
  every ``level_step_bps``, each holding ``level_notional`` of quote (rounded to the lot step).
  It is rebuilt from the mid at every call, so liquidity regenerates between orders.
* Taker flow: MARKET orders (and the crossing part of LIMIT orders) walk the levels up to their
  limit price; what the book cannot give is EXPIRED (MARKET, IOC) or rests (GTC). FOK fills all
  or nothing (spot: EXPIRED, USD-M: -5021). Post-only (spot LIMIT_MAKER, USD-M GTX) that would
  take is refused (-2010 / -5022).
* Resting orders fill as makers at their own price once the book crosses them, at most one level
  of quantity per ``match_interval_ms`` (:meth:`Engine.advance`), so large orders fill partially.
* A client order id is refused only while an earlier order with that id is still open.
"""

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from hamilton_exec.exchange_sim import errors
from hamilton_exec.exchange_sim.accounts import ZERO, FuturesAccount, SpotAccount
from hamilton_exec.exchange_sim.book import Book, Level, build_book, crosses, total, walk
from hamilton_exec.exchange_sim.filters import check_futures, check_spot
from hamilton_exec.exchange_sim.market import Filters, SymbolSpec, SyntheticMarket

Venue = Literal["spot", "futures"]
OPEN = frozenset({"NEW", "PARTIALLY_FILLED"})
_FEE_PLACES = Decimal("0.00000001")
_BPS = Decimal(10_000)


@dataclass(frozen=True)
class EngineConfig:
    half_spread_bps: float = 1.0
    level_step_bps: float = 1.0
    levels: int = 20
    level_notional: float = 50_000.0
    spot_maker_bps: float = 10.0
    spot_taker_bps: float = 10.0
    futures_maker_bps: float = 2.0
    futures_taker_bps: float = 5.0
    match_interval_ms: int = 100
    default_leverage: int = 20


@dataclass(frozen=True)
class OrderParams:
    symbol: str
    side: Literal["BUY", "SELL"]
    type: Literal["LIMIT", "MARKET", "LIMIT_MAKER"]
    quantity: Decimal | None = None
    price: Decimal | None = None
    time_in_force: Literal["GTC", "IOC", "FOK", "GTX"] | None = None
    quote_order_qty: Decimal | None = None
    reduce_only: bool = False
    client_order_id: str | None = None


@dataclass
class Fill:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    maker: bool
    realized_pnl: Decimal = ZERO

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass
class Order:
    venue: Venue
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    time: int
    reduce_only: bool = False
    orig_quote_qty: Decimal = ZERO
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    locked: Decimal = ZERO
    last_match_ms: int = 0
    fills: list[Fill] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO


class Engine:
    """Orders, books and accounts for the symbols of ``market`` (spot and USD-M)."""

    def __init__(self, market: SyntheticMarket, config: EngineConfig | None = None) -> None:
        self.market = market
        self.config = config or EngineConfig()
        self.spot = SpotAccount()
        self.futures = FuturesAccount(default_leverage=self.config.default_leverage)
        self.orders: dict[Venue, dict[int, Order]] = {"spot": {}, "futures": {}}
        self.trades: dict[Venue, list[Fill]] = {"spot": [], "futures": []}
        self.orders_per_client_id: Counter[str] = Counter()
        self._by_cid: dict[tuple[Venue, str, str], list[int]] = {}
        self._next_id: dict[Venue, int] = {"spot": 1_000_001, "futures": 4_000_000_001}
        self._next_trade = 1

    # --- market ---------------------------------------------------------------------------

    def spec(self, symbol: str) -> SymbolSpec:
        spec = self.market.spec(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    def filters(self, venue: Venue, symbol: str) -> Filters:
        spec = self.spec(symbol)
        return spec.futures if venue == "futures" else spec.spot

    def mid(self, venue: Venue, symbol: str, now: int) -> Decimal:
        tick = self.filters(venue, symbol).tick_size
        return (Decimal(repr(self.market.mid(symbol, now))) / tick).to_integral_value() * tick

    def book(self, venue: Venue, symbol: str, now: int, depth: int | None = None) -> Book:
        cfg = self.config
        return build_book(
            Decimal(repr(self.market.mid(symbol, now))),
            self.filters(venue, symbol),
            half_spread_bps=cfg.half_spread_bps,
            level_step_bps=cfg.level_step_bps,
            levels=depth or cfg.levels,
            level_notional=cfg.level_notional,
        )

    # --- orders ---------------------------------------------------------------------------

    def place(self, venue: Venue, p: OrderParams, now: int) -> Order:
        """Check, match and record a new order (raises SimError when Binance would refuse it)."""
        cid = p.client_order_id or self._auto_cid(venue)
        if any(self.orders[venue][i].is_open for i in self._by_cid.get((venue, p.symbol, cid), [])):
            raise errors.duplicate_order(venue == "futures")
        ref = self._check_filters(venue, p, now)
        takes, rest = self._plan(venue, p, now)
        if venue == "spot":
            self._check_spot_funds(p, takes, rest)
        elif not p.reduce_only:
            self._check_margin(p, p.quantity or ZERO, p.price or ref, now)
        order = Order(
            venue=venue,
            order_id=self._next_id[venue],
            client_order_id=cid,
            symbol=p.symbol,
            side=p.side,
            type=p.type,
            time_in_force=p.time_in_force or "GTC",
            price=p.price or ZERO,
            orig_qty=p.quantity if p.quantity is not None else total(takes),
            orig_quote_qty=p.quote_order_qty or ZERO,
            reduce_only=p.reduce_only,
            time=now,
            update_time=now,
            last_match_ms=now,
        )
        self._next_id[venue] += 1
        self.orders[venue][order.order_id] = order
        self._by_cid.setdefault((venue, p.symbol, cid), []).append(order.order_id)
        self.orders_per_client_id[cid] += 1
        for price, q in takes:
            self._fill(order, price, q, maker=False, now=now)
        if rest > 0 and venue == "spot":
            spec = self.spec(p.symbol)
            order.locked = rest * order.price if p.side == "BUY" else rest
            self.spot.lock(spec.quote if p.side == "BUY" else spec.base, order.locked)
        if order.remaining == 0 and order.executed_qty > 0:
            order.status = "FILLED"
        elif rest > 0:
            order.status = "PARTIALLY_FILLED" if order.executed_qty else "NEW"
        else:
            order.status = "EXPIRED"
        return order

    def _check_filters(self, venue: Venue, p: OrderParams, now: int) -> Decimal:
        """Raise the venue's filter failure, if any; returns the mid used as reference price."""
        f = self.filters(venue, p.symbol)
        market = p.type == "MARKET"
        ref = self.mid(venue, p.symbol, now)
        if venue == "futures":
            if p.quantity is None:
                raise errors.mandatory("quantity")
            check_futures(
                f, is_market=market, qty=p.quantity, price=p.price, ref_price=ref,
                reduce_only=p.reduce_only,
            )  # fmt: skip
        else:
            check_spot(f, is_market=market, qty=p.quantity, price=p.price, ref_price=ref)
            if p.quote_order_qty is not None and p.quote_order_qty < f.min_notional:
                raise errors.filter_failure("NOTIONAL")
        return ref

    def _plan(self, venue: Venue, p: OrderParams, now: int) -> tuple[list[Level], Decimal]:
        """The taker fills the book gives this order now, and the quantity left to rest."""
        fut = venue == "futures"
        book = self.book(venue, p.symbol, now)
        opposite = book.asks if p.side == "BUY" else book.bids
        limit = None if p.type == "MARKET" else p.price
        post_only = p.type == "LIMIT_MAKER" or p.time_in_force == "GTX"
        if post_only and limit is not None and crosses(p.side, limit, opposite):
            raise errors.would_take(fut)
        qty = p.quantity
        if fut and p.reduce_only and qty is not None:
            qty = min(qty, self._reduce_only_cap(p))
        f = self.filters(venue, p.symbol)
        takes = [] if post_only else walk(opposite, p.side, qty, p.quote_order_qty, limit, f)
        if p.time_in_force == "FOK" and qty is not None and total(takes) < qty:
            if fut:
                raise errors.fok_rejected()
            takes = []
        resting = limit is not None and p.time_in_force not in ("IOC", "FOK")
        rest = qty - total(takes) if resting and qty is not None else ZERO
        return takes, rest

    def cancel(
        self, venue: Venue, symbol: str, order_id: int | None, cid: str | None, now: int
    ) -> Order:
        try:
            order = self.lookup(venue, symbol, order_id, cid)
        except errors.SimError:
            raise errors.unknown_order() from None
        if not order.is_open:
            raise errors.unknown_order()
        self._close(order, "CANCELED", now)
        return order

    def cancel_all(self, venue: Venue, symbol: str, now: int) -> list[Order]:
        self.spec(symbol)
        orders = self.open_orders(venue, symbol)
        for order in orders:
            self._close(order, "CANCELED", now)
        return orders

    def lookup(self, venue: Venue, symbol: str, order_id: int | None, cid: str | None) -> Order:
        self.spec(symbol)
        if order_id is not None:
            order = self.orders[venue].get(order_id)
        else:
            ids = self._by_cid.get((venue, symbol, cid or ""), [])
            order = self.orders[venue][ids[-1]] if ids else None
        if order is None or order.symbol != symbol:
            raise errors.order_not_found()
        return order

    def open_orders(self, venue: Venue, symbol: str | None = None) -> list[Order]:
        return [
            o
            for o in self.orders[venue].values()
            if o.is_open and (symbol is None or o.symbol == symbol)
        ]

    def advance(self, now: int) -> None:
        """Fill resting orders the book has crossed (one level's quantity per match interval)."""
        books: dict[tuple[Venue, str], Book] = {}
        due = [
            o
            for o in [*self.open_orders("spot"), *self.open_orders("futures")]
            if now - o.last_match_ms >= self.config.match_interval_ms
        ]
        for order in due:
            key: tuple[Venue, str] = (order.venue, order.symbol)
            if key not in books:
                books[key] = self.book(order.venue, order.symbol, now, 1)
            side = books[key].asks if order.side == "BUY" else books[key].bids
            if not crosses(order.side, order.price, side):
                continue
            qty = min(order.remaining, side[0][1])
            if order.reduce_only:
                qty = min(qty, self._reduce_only_cap(order))
                if qty <= 0:
                    self._close(order, "EXPIRED", now)
                    continue
            order.last_match_ms = now
            self._fill(order, order.price, qty, maker=True, now=now)
            order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"

    # --- internals ------------------------------------------------------------------------

    def _auto_cid(self, venue: Venue) -> str:
        seed = f"{venue}:{self._next_id[venue]}".encode()
        return hashlib.sha256(seed).hexdigest()[:22]

    def _reduce_only_cap(self, p: OrderParams | Order) -> Decimal:
        amount = self.futures.position(p.symbol).amount
        if amount == 0 or (amount > 0) == (p.side == "BUY"):
            if isinstance(p, Order):
                return ZERO
            raise errors.reduce_only_rejected()
        return abs(amount)

    def _marks(self, now: int) -> dict[str, Decimal]:
        return {
            s: self.mid("futures", s, now) for s, p in self.futures.positions.items() if p.amount
        }

    def _order_margin(self, now: int) -> Decimal:
        return sum(
            (o.remaining * o.price / self.futures.leverage_of(o.symbol)
             for o in self.open_orders("futures") if not o.reduce_only),
            ZERO,
        )  # fmt: skip

    def _check_margin(self, p: OrderParams, qty: Decimal, price: Decimal, now: int) -> None:
        amount = self.futures.position(p.symbol).amount
        same_way = amount == 0 or (amount > 0) == (p.side == "BUY")
        opening = qty if same_way else max(ZERO, qty - abs(amount))
        if opening == 0:
            return
        rate = Decimal(repr(self.config.futures_taker_bps)) / _BPS
        needed = opening * price / self.futures.leverage_of(p.symbol) + opening * price * rate
        quote = self.spec(p.symbol).quote
        if needed > self.futures.available(quote, self._marks(now), self._order_margin(now)):
            raise errors.margin_insufficient()

    def _check_spot_funds(self, p: OrderParams, takes: list[Level], rest: Decimal) -> None:
        spec = self.spec(p.symbol)
        if p.side == "BUY":
            cost = sum((price * q for price, q in takes), ZERO) + rest * (p.price or ZERO)
            if p.quote_order_qty is not None:
                cost = max(cost, p.quote_order_qty)
            self.spot.require(spec.quote, cost)
        else:
            self.spot.require(spec.base, p.quantity if p.quantity is not None else total(takes))

    def _fill(self, order: Order, price: Decimal, qty: Decimal, *, maker: bool, now: int) -> None:
        spec = self.spec(order.symbol)
        cfg = self.config
        fut = order.venue == "futures"
        bps = (
            (cfg.futures_maker_bps if maker else cfg.futures_taker_bps)
            if fut
            else (cfg.spot_maker_bps if maker else cfg.spot_taker_bps)
        )
        rate = Decimal(repr(bps)) / _BPS
        quote = price * qty
        realized = ZERO
        if fut:
            fee, asset = (quote * rate).quantize(_FEE_PLACES), spec.quote
            signed = qty if order.side == "BUY" else -qty
            realized = self.futures.apply_fill(order.symbol, asset, signed, price, fee, now)
        elif order.side == "BUY":
            fee, asset = (qty * rate).quantize(_FEE_PLACES), spec.base
            self.spot.debit(spec.quote, quote, locked=maker)
            order.locked -= quote if maker else ZERO
            self.spot.credit(spec.base, qty - fee)
        else:
            fee, asset = (quote * rate).quantize(_FEE_PLACES), spec.quote
            self.spot.debit(spec.base, qty, locked=maker)
            order.locked -= qty if maker else ZERO
            self.spot.credit(spec.quote, quote - fee)
        self.spot.update_ms = now
        fill = Fill(
            self._next_trade, order.order_id, order.symbol, order.side, price, qty, fee, asset,
            now, maker, realized,
        )  # fmt: skip
        self._next_trade += 1
        order.fills.append(fill)
        self.trades[order.venue].append(fill)
        order.executed_qty += qty
        order.cum_quote += quote
        order.update_time = now

    def _close(self, order: Order, status: str, now: int) -> None:
        if order.locked > 0:
            spec = self.spec(order.symbol)
            self.spot.unlock(spec.quote if order.side == "BUY" else spec.base, order.locked)
            order.locked = ZERO
        order.status = status
        order.update_time = now
