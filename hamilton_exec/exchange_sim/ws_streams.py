"""Market streams: stream names, and the publisher that computes klines, book tickers and diff
depth for every subscribed stream on each tick and hands the payloads to the connections.

Stream names (lowercase symbol, as Binance): ``<symbol>@kline_<interval>`` (1m ... 1w),
``<symbol>@bookTicker``, ``<symbol>@depth`` (spot 1000 ms, USD-M 250 ms), ``<symbol>@depth@100ms``
(also ``@1000ms``; USD-M ``@250ms``, ``@500ms``).

Diff depth: update ids are server times on a grid of ``depth_grid_ms`` (100 ms x time_scale). The
book at update id ``g`` is the synthetic book of the mid at ``g`` (``depth_levels`` a side); the
REST ``/depth`` snapshot answers the book of the latest grid point with ``lastUpdateId = g``, and
every event is the exact diff between the books of its ``U - 1`` and ``u`` (levels gone are sent
with quantity 0), so Binance's "snapshot + buffered diffs" recipe rebuilds the book exactly.
"""

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Protocol

import numpy as np

from hamilton_exec.exchange_sim.binance_format import plain, s8
from hamilton_exec.exchange_sim.binance_routes import Params, limit_of, symbol
from hamilton_exec.exchange_sim.book import Book
from hamilton_exec.exchange_sim.market import INTERVAL_MS, SyntheticMarket
from hamilton_exec.exchange_sim.matching import Engine, Venue
from hamilton_exec.exchange_sim.ws_faults import WsFaultSchedule
from hamilton_exec.exchange_sim.ws_market import FastMarket, kline_event

_NAME: Final = re.compile(r"^([a-z0-9]{2,32})@(kline_[0-9a-z]+|bookTicker|depth(?:@(\d+)ms)?)$")
DEPTH_SPEEDS: Final[dict[Venue, dict[str | None, int]]] = {
    "spot": {None: 1000, "100": 100, "1000": 1000},
    "futures": {None: 250, "100": 100, "250": 250, "500": 500},
}
FRESH_GRID_STEPS: Final = 10
MAX_GRID_STEPS: Final = 50  # more grid points behind (a clock jump): one diff straight to now


@dataclass(frozen=True)
class Stream:
    name: str
    symbol: str  # Binance id, upper case
    kind: str  # kline | bookTicker | depth
    interval: str = ""
    speed_ms: int = 0

    @property
    def category(self) -> str:
        """The USD-M URL category Binance serves it on (``/public`` or ``/market``)."""
        return "public" if self.kind in ("depth", "bookTicker") else "market"


def parse_stream(name: str, venue: Venue, market: SyntheticMarket) -> Stream | None:
    """The stream named ``name``, or None when Binance would not know it (bad form, unknown
    symbol or interval, unsupported speed)."""
    m = _NAME.match(name)
    if m is None:
        return None
    sym, what, speed = m.group(1).upper(), m.group(2), m.group(3)
    if market.spec(sym) is None:
        return None
    if what.startswith("kline_"):
        interval = what[len("kline_") :]
        return Stream(name, sym, "kline", interval=interval) if interval in INTERVAL_MS else None
    if what == "bookTicker":
        return Stream(name, sym, "bookTicker")
    ms = DEPTH_SPEEDS[venue].get(speed)
    return None if ms is None else Stream(name, sym, "depth", speed_ms=ms)


class Subscriber(Protocol):
    def push(self, stream: str, payload: str) -> None: ...


def dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


@dataclass
class _DepthAcc:
    first: int | None = None  # U of the pending event
    last: int = 0  # u of the pending event
    prev_u: int = 0  # u of the last event sent (USD-M ``pu``)
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    last_emit: float = 0.0


@dataclass
class _DepthState:
    grid: int
    bids: dict[Decimal, Decimal]
    asks: dict[Decimal, Decimal]
    accs: dict[str, _DepthAcc] = field(default_factory=dict)  # per stream name


@dataclass
class _KlineState:
    open_ms: int
    last_push: float = 0.0


class StreamHub:
    """Subscriptions of all connections, and the per-tick publisher (see module doc)."""

    def __init__(
        self,
        engine: Engine,
        faults: WsFaultSchedule,
        *,
        time_scale: float,
        kline_interval_s: float,
        book_ticker_interval_s: float,
        depth_levels: int,
    ) -> None:
        self.engine = engine
        self.fast = FastMarket(engine.market, engine.config)
        self.faults = faults
        self.kline_interval_s = kline_interval_s
        self.book_ticker_interval_s = book_ticker_interval_s
        self.depth_levels = depth_levels
        self.depth_grid_ms = max(1, round(100 * time_scale))
        self.topics: dict[tuple[Venue, str], tuple[Stream, set[Subscriber]]] = {}
        self._klines: dict[tuple[Venue, str], _KlineState] = {}
        self._depth: dict[tuple[Venue, str], _DepthState] = {}
        self._tickers: dict[tuple[Venue, str], tuple[str, str, str, str]] = {}
        self._last_tickers = 0.0

    # --- subscriptions ----------------------------------------------------------------------

    def subscribe(self, venue: Venue, stream: Stream, sub: Subscriber) -> None:
        self.topics.setdefault((venue, stream.name), (stream, set()))[1].add(sub)

    def unsubscribe(self, venue: Venue, name: str, sub: Subscriber) -> None:
        entry = self.topics.get((venue, name))
        if entry is None:
            return
        entry[1].discard(sub)
        if not entry[1]:
            del self.topics[(venue, name)]

    def _send(self, venue: Venue, name: str, payload: Any) -> None:
        entry = self.topics.get((venue, name))
        if entry is None:
            return
        text = dumps(payload)
        for sub in list(entry[1]):
            sub.push(name, text)

    # --- publishing -----------------------------------------------------------------------

    def next_close_ms(self) -> int | None:
        """Server time of the next bar close among the subscribed kline intervals."""
        closes = [st.open_ms + INTERVAL_MS[iv] for (_, iv), st in self._klines.items()]
        return min(closes) if closes else None

    def publish(self, now: int) -> None:
        wall = time.monotonic()
        groups: dict[tuple[Venue, str], dict[str, list[Stream]]] = {}
        for (venue, _), (stream, _subs) in self.topics.items():
            key = stream.interval if stream.kind == "kline" else stream.kind
            groups.setdefault((venue, stream.kind), {}).setdefault(key, []).append(stream)
        for (venue, kind), by_key in groups.items():
            if kind == "kline":
                for interval, streams in by_key.items():
                    self._publish_klines(venue, interval, streams, now, wall)
            elif kind == "bookTicker":
                if wall - self._last_tickers >= self.book_ticker_interval_s:
                    self._publish_tickers(venue, by_key["bookTicker"], now)
            else:
                self._publish_depth(venue, by_key["depth"], now, wall)
        if "bookTicker" in {k for (_, k) in groups} and (
            wall - self._last_tickers >= self.book_ticker_interval_s
        ):
            self._last_tickers = wall
        self._klines = {k: v for k, v in self._klines.items() if (k[0], "kline") in groups}

    def _publish_klines(
        self, venue: Venue, interval: str, streams: list[Stream], now: int, wall: float
    ) -> None:
        bar_open = SyntheticMarket.bar_open(interval, now)
        state = self._klines.setdefault((venue, interval), _KlineState(bar_open))
        syms = sorted({s.symbol for s in streams})
        names = {s.symbol: s.name for s in streams}
        if bar_open > state.open_ms:
            # the bar(s) just closed: their final klines at once (x=true)
            size = INTERVAL_MS[interval]
            first = max(state.open_ms, bar_open - 10 * size)
            for open_ms in range(first, bar_open, size):
                rows = self.fast.kline_rows(venue, syms, interval, open_ms, None)
                for sym, row in zip(syms, rows, strict=True):
                    self._send(venue, names[sym], kline_event(sym, interval, row, now, True))
            state.open_ms = bar_open
            state.last_push = wall
            return
        if wall - state.last_push >= self.kline_interval_s:
            state.last_push = wall
            rows = self.fast.kline_rows(venue, syms, interval, bar_open, now)
            for sym, row in zip(syms, rows, strict=True):
                self._send(venue, names[sym], kline_event(sym, interval, row, now, False))

    def _publish_tickers(self, venue: Venue, streams: list[Stream], now: int) -> None:
        syms = sorted({s.symbol for s in streams})
        names = {s.symbol: s.name for s in streams}
        mids = self.fast.mids(syms, np.array([now], dtype=np.int64))[:, 0]
        fmt = plain if venue == "futures" else s8
        for sym, mid in zip(syms, mids, strict=True):
            book = self.fast.book(venue, sym, float(mid), 1)
            quote = (fmt(book.bids[0][0]), fmt(book.bids[0][1]),
                     fmt(book.asks[0][0]), fmt(book.asks[0][1]))  # fmt: skip
            if self._tickers.get((venue, sym)) == quote:
                continue
            self._tickers[(venue, sym)] = quote
            head: dict[str, Any] = {"u": now}
            if venue == "futures":
                head = {"e": "bookTicker", "u": now, "E": now, "T": now}
            b, bq, a, aq = quote
            self._send(venue, names[sym], {**head, "s": sym, "b": b, "B": bq, "a": a, "A": aq})

    # --- diff depth -----------------------------------------------------------------------

    def grid(self, now: int) -> int:
        return now // self.depth_grid_ms * self.depth_grid_ms

    def book_at(self, venue: Venue, syms: list[str], times: Iterable[int]) -> list[list[Book]]:
        """Books of ``syms`` (rows) at each of ``times`` (columns)."""
        t = np.array(list(times), dtype=np.int64)
        mids = self.fast.mids(syms, t)
        return [
            [self.fast.book(venue, sym, float(m), self.depth_levels) for m in mids[i]]
            for i, sym in enumerate(syms)
        ]

    def _publish_depth(self, venue: Venue, streams: list[Stream], now: int, wall: float) -> None:
        g_now = self.grid(now)
        step = self.depth_grid_ms
        by_sym: dict[str, list[Stream]] = {}
        for s in streams:
            by_sym.setdefault(s.symbol, []).append(s)
        fresh = [sym for sym in by_sym if (venue, sym) not in self._depth]
        if fresh:
            # a stream starts a few grid points back, so a snapshot taken around the subscribe
            # (ccxt asks for it after the confirmation) lies inside the first event's range
            g0 = g_now - FRESH_GRID_STEPS * step
            for sym, books in zip(fresh, self.book_at(venue, fresh, [g0]), strict=True):
                self._depth[(venue, sym)] = _DepthState(g0, *_levels(books[0]))
        behind = [sym for sym in by_sym if self._depth[(venue, sym)].grid < g_now]
        if behind:
            start = min(self._depth[(venue, s)].grid for s in behind) + step
            points = list(range(max(start, g_now - (MAX_GRID_STEPS - 1) * step), g_now + 1, step))
            all_books = self.book_at(venue, behind, points)
            for sym, books in zip(behind, all_books, strict=True):
                state = self._depth[(venue, sym)]
                for g, book in zip(points, books, strict=True):
                    if g > state.grid:
                        self._advance(state, g, book, by_sym[sym])
        for sym, subs in by_sym.items():
            state = self._depth[(venue, sym)]
            for s in subs:
                acc = state.accs.get(s.name)
                if acc is None or acc.first is None:
                    continue
                if wall - acc.last_emit >= s.speed_ms / 1000:
                    self._emit(venue, sym, s.name, acc, now, wall)
        live = {(venue, sym) for sym in by_sym}
        self._depth = {k: v for k, v in self._depth.items() if k[0] != venue or k in live}

    def _advance(self, state: _DepthState, g: int, book: Book, subs: list[Stream]) -> None:
        bids, asks = _levels(book)
        dbids = _diff(state.bids, bids)
        dasks = _diff(state.asks, asks)
        names = {s.name for s in subs}
        state.accs = {n: a for n, a in state.accs.items() if n in names}
        for s in subs:
            acc = state.accs.setdefault(s.name, _DepthAcc(prev_u=state.grid))
            if acc.first is None:
                acc.first = state.grid + 1
            acc.last = g
            acc.bids.update(dbids)
            acc.asks.update(dasks)
        state.grid, state.bids, state.asks = g, bids, asks

    def _emit(
        self, venue: Venue, sym: str, name: str, acc: _DepthAcc, now: int, wall: float
    ) -> None:
        first, last, prev = acc.first, acc.last, acc.prev_u
        bids, asks = acc.bids, acc.asks
        acc.first, acc.bids, acc.asks, acc.prev_u, acc.last_emit = None, {}, {}, last, wall
        if self.faults.take_depth_gap(venue, sym):
            return  # lost: the next event's U skips this range
        fmt = plain if venue == "futures" else s8
        payload: dict[str, Any] = {"e": "depthUpdate", "E": now}
        if venue == "futures":
            payload["T"] = now
        payload.update(s=sym, U=first, u=last)
        if venue == "futures":
            payload["pu"] = prev
        payload["b"] = [[fmt(p), fmt(q)] for p, q in sorted(bids.items(), reverse=True)]
        payload["a"] = [[fmt(p), fmt(q)] for p, q in sorted(asks.items())]
        self._send(venue, name, payload)

    # --- REST snapshot --------------------------------------------------------------------

    def depth_handler(self, venue: Venue) -> Callable[[Engine, Params, int], Any]:
        """``GET /api/v3/depth`` / ``/fapi/v1/depth`` consistent with the diff streams."""

        def handler(engine: Engine, p: Params, now: int) -> Any:
            sym = symbol(engine, p)
            limit = limit_of(p, 500 if venue == "futures" else 100, 1000 if venue == "futures"
                             else 5000)  # fmt: skip
            g = self.grid(now)
            book = self.book_at(venue, [sym], [g])[0][0]
            fmt = plain if venue == "futures" else s8
            body: dict[str, Any] = {"lastUpdateId": g}
            if venue == "futures":
                body.update(E=now, T=now)
            body["bids"] = [[fmt(px), fmt(q)] for px, q in book.bids[:limit]]
            body["asks"] = [[fmt(px), fmt(q)] for px, q in book.asks[:limit]]
            return body

        return handler


def _levels(book: Book) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    return dict(book.bids), dict(book.asks)


def _diff(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal]) -> dict[Decimal, Decimal]:
    out = {p: q for p, q in new.items() if old.get(p) != q}
    out.update({p: Decimal(0) for p in old if p not in new})
    return out
