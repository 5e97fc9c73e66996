"""The live order books a streaming feed hands to a tick, and the staleness rule on them.

A :class:`BookQuote` is the top of one coin's book as the feed last received it, stamped with
the feed's clock (the exchange's, where one is measured). At decision time the engine asks
:func:`book_for_decision`: a quote no older than ``max_book_age_s`` is attached to the decision
(the cost model prices the spread from it); an older one, or none, marks the coin ``stale`` /
``missing``: no new orders for it on this bar (the decision holds with ``stale_book``), and the
cost estimate falls back to the candle estimate with that reason (``costs.resolve_spread_bps``).
A feed that carries no books at all (replay, polling) gives ``NO_FEED``: the historical rule.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from trading_core.costs import BookStatus, BookTop
from trading_core.observability.logging import get_logger

STALE_BOOK_REASON = "stale_book"


@dataclass(frozen=True, slots=True)
class BookQuote:
    """Best bid/ask (and their sizes, NaN when the stream has none) received at ``received_at``."""

    symbol: str
    best_bid: float
    best_ask: float
    bid_qty: float
    ask_qty: float
    received_at: datetime
    # deeper levels (price, size), best first, where the stream has them (diff depth); the
    # top level alone (with its size) otherwise
    bids: tuple[tuple[float, float], ...] = ()
    asks: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.received_at.tzinfo is None:
            raise ValueError(f"received_at={self.received_at!r} is naive; pass a UTC datetime")
        self.top  # the same price and level invariants  # noqa: B018

    @property
    def top(self) -> BookTop:
        """The book for the cost model: best prices and the visible levels (an unknown size
        leaves the side without levels: slippage then comes from the square-root law)."""
        bids = self.bids or _top_level(self.best_bid, self.bid_qty)
        asks = self.asks or _top_level(self.best_ask, self.ask_qty)
        return BookTop(self.best_bid, self.best_ask, bids=bids, asks=asks)

    def age_s(self, now: datetime) -> float:
        return max((now - self.received_at).total_seconds(), 0.0)


def _top_level(price: float, qty: float) -> tuple[tuple[float, float], ...]:
    return ((price, qty),) if math.isfinite(qty) and qty > 0.0 else ()


def quote_from_levels(
    symbol: str,
    bid: float | None,
    ask: float | None,
    bid_qty: float | None,
    ask_qty: float | None,
    received_at: datetime,
    *,
    bids: tuple[tuple[float, float], ...] = (),
    asks: tuple[tuple[float, float], ...] = (),
) -> BookQuote | None:
    """A quote from a stream's best levels, or None when a side is empty or the book is crossed
    (a crossed or one-sided book is no basis for a spread)."""
    if bid is None or ask is None:
        return None
    if not (math.isfinite(bid) and math.isfinite(ask)) or bid <= 0.0 or ask < bid:
        return None
    return BookQuote(
        symbol,
        float(bid),
        float(ask),
        math.nan if bid_qty is None else float(bid_qty),
        math.nan if ask_qty is None else float(ask_qty),
        received_at,
        bids,
        asks,
    )


def book_for_decision(
    books: Mapping[str, BookQuote] | None, symbol: str, now: datetime, max_book_age_s: float
) -> tuple[BookTop | None, BookStatus]:
    """The book a decision at ``now`` may use, and its status (see the module docstring)."""
    if books is None:
        return None, BookStatus.NO_FEED
    quote = books.get(symbol)
    if quote is None:
        return None, BookStatus.MISSING
    if quote.age_s(now) > max_book_age_s:
        return None, BookStatus.STALE
    return quote.top, BookStatus.FRESH


def book_age_s(books: Mapping[str, BookQuote], symbol: str, now: datetime) -> float:
    """Seconds since ``symbol``'s book arrived (inf when it never did)."""
    quote = books.get(symbol)
    return quote.age_s(now) if quote is not None else math.inf


class BookStatusLog:
    """Logs a coin's book going stale (or missing) and coming back, once per change: at 400
    coins a dead stream would otherwise log 400 lines a bar (the metric counts every bar)."""

    def __init__(self) -> None:
        self.last: dict[str, BookStatus] = {}

    def note(self, symbol: str, status: BookStatus, age_s: float, max_book_age_s: float) -> None:
        previous = self.last.get(symbol, BookStatus.FRESH)
        self.last[symbol] = status
        if status is previous:
            return
        if status is BookStatus.FRESH:
            get_logger(__name__).info("book_fresh_again", symbol=symbol, was=previous.value)
            return
        get_logger(__name__).warning(
            "book_stale",
            symbol=symbol,
            status=status.value,
            age_s=age_s,
            max_book_age_s=max_book_age_s,
            action="no new orders for this coin until its book is fresh",
        )
