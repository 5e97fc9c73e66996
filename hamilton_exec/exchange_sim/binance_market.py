"""Market data handlers for both APIs (spot ``/api/v3`` and USD-M ``/fapi``): server time,
exchange info, klines, depth, tickers, premium index and funding rates."""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hamilton_exec.exchange_sim import binance_format as fmt
from hamilton_exec.exchange_sim.binance_routes import (
    Handler,
    Params,
    integer,
    limit_of,
    required,
    symbol,
    symbols,
)
from hamilton_exec.exchange_sim.errors import SimError
from hamilton_exec.exchange_sim.market import FUNDING_INTERVAL_MS, INTERVAL_MS
from hamilton_exec.exchange_sim.matching import Engine, Venue


def _venue_fmt(venue: Venue) -> Callable[[Decimal], str]:
    return fmt.plain if venue == "futures" else fmt.s8


def ping(engine: Engine, p: Params, now: int) -> Any:
    return {}


def server_time(engine: Engine, p: Params, now: int) -> Any:
    return {"serverTime": now}


def exchange_info(venue: Venue) -> Handler:
    def handler(engine: Engine, p: Params, now: int) -> Any:
        wanted = set(symbols(engine, p))
        specs = [s for s in engine.market.specs if s.id in wanted]
        return fmt.exchange_info(specs, now, futures=venue == "futures")

    return handler


def klines(venue: Venue) -> Handler:
    def handler(engine: Engine, p: Params, now: int) -> Any:
        sym = symbol(engine, p)
        interval = required(p, "interval")
        if interval not in INTERVAL_MS:
            raise SimError(-1120, "Invalid interval.")
        return engine.market.klines(
            sym,
            interval,
            now_ms=now,
            start_ms=integer(p, "startTime"),
            end_ms=integer(p, "endTime"),
            limit=limit_of(p, 500, 1500 if venue == "futures" else 1000),
            tick=engine.filters(venue, sym).tick_size,
        )

    return handler


def depth(venue: Venue) -> Handler:
    def handler(engine: Engine, p: Params, now: int) -> Any:
        sym = symbol(engine, p)
        book = engine.book(venue, sym, now, limit_of(p, 500 if venue == "futures" else 100, 1000))
        f = _venue_fmt(venue)
        body: dict[str, Any] = {"lastUpdateId": now}
        if venue == "futures":
            body.update(E=now, T=now)
        body["bids"] = [[f(px), f(q)] for px, q in book.bids]
        body["asks"] = [[f(px), f(q)] for px, q in book.asks]
        return body

    return handler


def _one_or_list(p: Params, rows: list[dict[str, Any]]) -> Any:
    return rows[0] if p.get("symbol") else rows


def ticker_24hr(venue: Venue) -> Handler:
    def handler(engine: Engine, p: Params, now: int) -> Any:
        f = _venue_fmt(venue)
        rows = []
        for sym in symbols(engine, p):
            tick = engine.filters(venue, sym).tick_size
            st = {k: Decimal(repr(v)) for k, v in engine.market.stats_24h(sym, now).items()}
            last, open_ = (st["last"] / tick).to_integral_value() * tick, st["open"]
            open_ = (open_ / tick).to_integral_value() * tick
            row: dict[str, Any] = {
                "symbol": sym,
                "priceChange": f(last - open_),
                "priceChangePercent": f"{(last - open_) / open_ * 100:.3f}",
                "weightedAvgPrice": f((st["vwap"] / tick).to_integral_value() * tick),
                "lastPrice": f(last),
                "lastQty": f(engine.filters(venue, sym).min_qty),
                "openPrice": f(open_),
                "highPrice": f((st["high"] / tick).to_integral_value() * tick),
                "lowPrice": f((st["low"] / tick).to_integral_value() * tick),
                "volume": f"{st['volume']:.8f}",
                "quoteVolume": f"{st['quote_volume']:.8f}",
                "openTime": now - 86_400_000,
                "closeTime": now,
                "firstId": 1,
                "lastId": int(st["quote_volume"] / 500),
                "count": int(st["quote_volume"] / 500),
            }
            if venue == "spot":
                book = engine.book(venue, sym, now, 1)
                row.update(
                    prevClosePrice=f(open_),
                    bidPrice=f(book.bids[0][0]),
                    bidQty=f(book.bids[0][1]),
                    askPrice=f(book.asks[0][0]),
                    askQty=f(book.asks[0][1]),
                )
            rows.append(row)
        return _one_or_list(p, rows)

    return handler


def book_ticker(venue: Venue) -> Handler:
    def handler(engine: Engine, p: Params, now: int) -> Any:
        f = _venue_fmt(venue)
        rows = []
        for sym in symbols(engine, p):
            book = engine.book(venue, sym, now, 1)
            row: dict[str, Any] = {
                "symbol": sym,
                "bidPrice": f(book.bids[0][0]),
                "bidQty": f(book.bids[0][1]),
                "askPrice": f(book.asks[0][0]),
                "askQty": f(book.asks[0][1]),
            }
            if venue == "futures":
                row.update(time=now, lastUpdateId=now)
            rows.append(row)
        return _one_or_list(p, rows)

    return handler


def ticker_price(venue: Venue) -> Handler:
    def handler(engine: Engine, p: Params, now: int) -> Any:
        f = _venue_fmt(venue)
        rows: list[dict[str, Any]] = [
            {"symbol": s, "price": f(engine.mid(venue, s, now))} for s in symbols(engine, p)
        ]
        if venue == "futures":
            for row in rows:
                row["time"] = now
        return _one_or_list(p, rows)

    return handler


def premium_index(engine: Engine, p: Params, now: int) -> Any:
    rows = []
    next_funding = (now // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
    last_funding = now // FUNDING_INTERVAL_MS * FUNDING_INTERVAL_MS
    for sym in symbols(engine, p):
        mark = engine.mid("futures", sym, now)
        rows.append(
            {
                "symbol": sym,
                "markPrice": fmt.plain(mark),
                "indexPrice": fmt.plain(mark),
                "estimatedSettlePrice": fmt.plain(mark),
                "lastFundingRate": f"{engine.market.funding_rate_at(sym, last_funding):.8f}",
                "interestRate": "0.00010000",
                "nextFundingTime": next_funding,
                "time": now,
            }
        )
    return _one_or_list(p, rows)


def funding_rate(engine: Engine, p: Params, now: int) -> Any:
    rows = []
    for sym in [symbol(engine, p)] if p.get("symbol") else symbols(engine, {}):
        history = engine.market.funding_history(
            sym,
            now_ms=now,
            start_ms=integer(p, "startTime"),
            end_ms=integer(p, "endTime"),
            limit=limit_of(p, 100, 1000),
        )
        rows += [
            {"symbol": sym, "fundingTime": t, "fundingRate": f"{r:.8f}", "markPrice": f"{m:.8f}"}
            for t, r, m in history
        ]
    return rows
