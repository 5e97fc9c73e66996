"""The streaming feed: closed candles and books of every active coin over ccxt.pro websockets.

* **Candles.** One ``watch_ohlcv_for_symbols`` subscription for all coins (ccxt multiplexes the
  streams on shared connections). A bar counts as closed only on the venue's *final* kline
  (Binance's ``"x": true``), read from the raw message by a hook on the client's kline
  handler: ccxt's candle cache does not keep the flag, and "a newer bar has started" is wrong
  when messages arrive out of order. Venues without the flag close a bar when a newer one
  arrives.
* **Ticks.** The tick of a bar is emitted the moment every coin's final bar is in hand, or
  ``bar_grace_s`` after the close with whatever arrived (coins without a bar get the engine's
  ``missing_bar`` hold). Bars still missing ``rest_fill_after_s`` after the close (a lost
  message, a reconnect, a coin that closed before the subscription) are fetched over REST,
  validated like every candle; a reconnect fetches at once. A bar is kept once per coin and
  open time (stream or REST, whichever came first: ``duplicate_bar``), and one for a tick
  already emitted is dropped (``late_bar``): no bar is doubled.
* **Books.** ``watch_bids_asks`` (bookTicker) or ``watch_order_book_for_symbols`` (diff depth,
  resynchronised from a fresh snapshot after a sequence gap): each coin's newest top of book
  with its receive time goes into every tick (:mod:`hamilton_exec.market_data.market_books` judges
  it).
* **Faults.** A dropped connection (a temporary ccxt error by
  :func:`trading_core.market.exchange_calls.is_temporary`) is re-watched with its exponential
  backoff (ccxt reconnects and resubscribes); a stream silent for ``heartbeat_timeout_s`` is
  torn down and reconnected; errors that retrying cannot fix (bad symbol, authentication) end
  the feed.

Warm-up history and funding come over REST, as in :class:`PollingFeed`.
"""

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import ccxt

from hamilton_exec.market_data.feeds import PollingFeed
from hamilton_exec.market_data.market_books import BookQuote, quote_from_levels
from hamilton_exec.market_data.stream_messages import (
    book_ticker_quote,
    cached_candle,
    kline_candle,
    rejected_bars,
)
from hamilton_exec.market_data.window import Candle, Tick, utc_ms
from hamilton_exec.telemetry.feed_metrics import FeedMetrics
from trading_core.config.models import MarketDataFeedSection
from trading_core.errors import DataSourceError
from trading_core.market.exchange_calls import backoff_delay, is_temporary
from trading_core.market.source import MarketDataSource
from trading_core.market.validation import DESCRIPTIONS
from trading_core.observability.logging import get_logger

STREAMS = ("ohlcv", "book")
REST_FILL_CONCURRENCY = 8
# the longest wait between looks at the clock (wall seconds; a feed clock may run at another
# rate than the event loop's, e.g. an accelerated simulator's)
WAKE_S = 0.1
OHLCV_CACHE_BARS = 3
DEPTH_LEVELS = 20  # levels per side kept for the cost model's book walk


def _log() -> Any:
    return get_logger(__name__)


class StreamingFeed(PollingFeed):
    """Closed bars and books over websockets (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        source: MarketDataSource,
        symbols: Sequence[str],
        timeframe: str,
        *,
        history_bars: int,
        settings: MarketDataFeedSection,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: FeedMetrics | None = None,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        super().__init__(
            source,
            symbols,
            timeframe,
            history_bars=history_bars,
            poll_interval_s=settings.rest_fill_after_s,
            grace_s=settings.bar_grace_s,
            clock=clock,
            on_error=on_error,
        )
        self.client, self.settings, self.metrics = client, settings, metrics
        self.finals: dict[int, dict[str, Candle]] = {}
        self.books: dict[str, BookQuote] = {}
        self.last_message: dict[str, datetime] = {s: clock() for s in STREAMS}
        self._open_bar: dict[str, int] = {}  # flagless venues: the newest bar seen per coin
        self._by_id: dict[str, str] = {}
        self._wakeup = asyncio.Event()
        self._fill_now = False
        self._tasks: list[asyncio.Task[None]] = []
        self._failure: DataSourceError | None = None
        self._depth_missing: frozenset[str] = frozenset()  # dropped books already reported

    # --- ticks --------------------------------------------------------------------------

    async def ticks(self, *, after_ms: int | None = None) -> AsyncGenerator[Tick, None]:
        if after_ms is not None:
            self.next_open_ms = max(self.next_open_ms, after_ms + self.step_ms)
        await self._start()
        try:
            while True:
                candles = self._validated(await self._collect_bar(self.next_open_ms))
                now = self.clock()
                close = utc_ms(self.next_open_ms + self.step_ms)
                if self.metrics is not None:
                    self.metrics.close_to_tick.observe(max((now - close).total_seconds(), 0.0))
                if self.settings.book == "depth":
                    self._refresh_depth_quotes(now)
                yield Tick(self.next_open_ms, candles, now, books=dict(self.books))
                self.finals = {t: b for t, b in self.finals.items() if t > self.next_open_ms}
                self.next_open_ms += self.step_ms
        finally:
            await self.close()

    def _validated(self, candles: dict[str, Candle]) -> dict[str, Candle]:
        """The tick's bars through the candle validator's row checks (one batch); a rejected
        bar is left out (the coin holds with ``missing_bar``), logged with its reason."""
        for symbol, reason in rejected_bars(candles, self.step_ms).items():
            del candles[symbol]
            if self.metrics is not None:
                self.metrics.rejected.labels(reason).inc()
            _log().warning(
                "ohlcv_candles_rejected", symbol=symbol, timeframe=self.timeframe, reason=reason,
                count=1, via="stream", detail=DESCRIPTIONS[reason],
            )  # fmt: skip
        return candles

    async def _collect_bar(self, open_ms: int) -> dict[str, Candle]:
        """The closed bars of ``open_ms`` once every coin has one, or when the grace is over.
        From the close on, coins still without their bar are fetched over REST every
        ``rest_fill_after_s`` (at once after a reconnect)."""
        close = utc_ms(open_ms + self.step_ms)
        next_fill_s = self.settings.rest_fill_after_s
        fetched = False  # one REST look before giving up (a start long after the close)
        while True:
            if self._failure is not None:
                raise self._failure
            have = self.finals.get(open_ms, {})
            if len(have) == len(self.symbols):
                return dict(have)
            since_close_s = (self.clock() - close).total_seconds()
            if since_close_s >= self.grace_s and fetched:
                _log().warning(
                    "feed_bar_incomplete", close_time=close.isoformat(), coins=len(have),
                    missing=len(self.symbols) - len(have), grace_s=self.grace_s,
                )  # fmt: skip
                return dict(have)
            due = self._fill_now or since_close_s >= min(next_fill_s, self.grace_s)
            if since_close_s >= 0 and due:
                self._fill_now, fetched = False, True
                await self._rest_fill(open_ms, [s for s in self.symbols if s not in have])
                next_fill_s = since_close_s + self.settings.rest_fill_after_s
                continue
            until_s = next_fill_s if since_close_s >= 0 else 0.0
            wait_s = min(until_s - since_close_s, self.grace_s - since_close_s, WAKE_S)
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=max(wait_s, 0.01))

    async def _rest_fill(self, open_ms: int, missing: list[str]) -> None:
        """The closed bar ``open_ms`` of coins the stream has not delivered, over REST."""
        if not missing:
            return
        gate = asyncio.Semaphore(REST_FILL_CONCURRENCY)

        async def one(symbol: str) -> Candle | None:
            async with gate:
                return await asyncio.to_thread(self._fetch, symbol, open_ms)

        candles = await asyncio.gather(*(one(s) for s in missing))
        got = [c for c in candles if c is not None]
        for symbol, candle in zip(missing, candles, strict=True):
            if candle is not None:
                self._keep(symbol, candle, source="rest")
        if got and self.metrics is not None:
            self.metrics.gap_filled.inc(len(got))
        _log().info(
            "feed_rest_fill",
            open_time=utc_ms(open_ms).isoformat(),
            missing=len(missing),
            filled=len(got),
        )

    def _keep(self, symbol: str, candle: Candle, *, source: str) -> None:
        """One closed bar per coin and open time; none for a tick already emitted."""
        if candle.open_ms < self.next_open_ms:
            self._drop("late_bar", symbol, candle.open_ms, source)
            return
        bars = self.finals.setdefault(candle.open_ms, {})
        if symbol in bars:
            self._drop("duplicate_bar", symbol, candle.open_ms, source)
            return
        bars[symbol] = candle
        if self.metrics is not None:
            self.metrics.bars.labels(source).inc()
        self._wakeup.set()

    def _drop(self, reason: str, symbol: str, open_ms: int, source: str) -> None:
        if self.metrics is not None:
            self.metrics.dropped.labels(reason).inc()
        _log().debug("feed_bar_dropped", reason=reason, symbol=symbol, open_ms=open_ms, via=source)

    # --- stream tasks -------------------------------------------------------------------

    async def _start(self) -> None:
        if self._tasks:
            return
        # ccxt keeps up to 1000 candles per coin by default; the feed reads finals from the raw
        # messages and needs at most the previous bar (venues without a final flag)
        self.client.options["OHLCVLimit"] = OHLCV_CACHE_BARS
        try:
            await self.client.load_markets()
            self._by_id = {self.client.market(s)["id"]: s for s in self.symbols}
        except ccxt.BaseError as exc:
            await self.close()
            shown = ", ".join(self.symbols[:5]) + (", ..." if len(self.symbols) > 5 else "")
            raise DataSourceError(
                f"cannot stream from {self.client.id}: {type(exc).__name__}: {str(exc)[:200]} "
                f"(symbols: {shown})"
            ) from exc
        self._hook()
        self._tasks = [
            asyncio.create_task(self._keep_watching("ohlcv", self._watch_ohlcv)),
            asyncio.create_task(self._keep_watching("book", self._watch_book)),
            asyncio.create_task(self._heartbeat()),
        ]

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.client.close()

    def _hook(self) -> None:
        """Read the raw kline and bookTicker messages as ccxt handles them (module docstring)."""
        handle_ohlcv, handle_bids_asks = self.client.handle_ohlcv, self.client.handle_bids_asks

        def on_kline(ws: Any, message: dict[str, Any]) -> None:
            handle_ohlcv(ws, message)
            self._on_kline(message)

        def on_book_ticker(ws: Any, message: Any) -> None:
            handle_bids_asks(ws, message)
            for item in message if isinstance(message, list) else [message]:
                self._on_book_ticker(item)

        self.client.handle_ohlcv = on_kline
        self.client.handle_bids_asks = on_book_ticker

    def _on_kline(self, message: dict[str, Any]) -> None:
        self.last_message["ohlcv"] = self.clock()
        kline = message.get("k") or {}
        symbol = self._by_id.get(str(kline.get("s") or message.get("s")))
        if symbol is None or kline.get("i") != self.timeframe:
            return
        candle = kline_candle(kline)
        if "x" in kline:
            if kline["x"]:
                self._keep(symbol, candle, source="stream")
            return
        previous = self._open_bar.get(symbol)  # a venue without the final flag
        if previous is not None and candle.open_ms > previous:
            last = self.client.ohlcvs.get(symbol, {}).get(self.timeframe)
            rows = [r for r in (last or []) if r[0] == previous]
            if rows:
                self._keep(symbol, cached_candle(rows[-1]), source="stream")
        self._open_bar[symbol] = max(candle.open_ms, previous or candle.open_ms)

    def _on_book_ticker(self, item: Any) -> None:
        if not isinstance(item, dict):
            return
        symbol = self._by_id.get(str(item.get("s")))
        if symbol is None:
            return
        now = self.clock()
        self.last_message["book"] = now
        quote = book_ticker_quote(symbol, item, now)
        if quote is not None:
            self.books[symbol] = quote

    async def _watch_ohlcv(self) -> None:
        await self.client.watch_ohlcv_for_symbols([[s, self.timeframe] for s in self.symbols])

    async def _watch_book(self) -> None:
        if self.settings.book == "bookTicker":
            await self.client.watch_bids_asks(list(self.symbols))
            return
        if self._depth_books_lost():
            self._depth_gap("a book dropped after a sequence gap")
        try:
            book = await self.client.watch_order_book_for_symbols(list(self.symbols))
        except ccxt.ChecksumError:
            self._depth_books_lost()  # the dropped book is now seen: counted once, here
            self._depth_gap("sequence gap in the depth stream")
            return
        self._on_depth(book)

    def _depth_books_lost(self) -> bool:
        """Whether ccxt dropped a coin's book since the last look (a book still missing is
        reported once).

        On a sequence gap ccxt drops the coin's book and its subscription and rejects only that
        coin's future; when another coin's update settled the shared watch first, the error is
        lost. The next watch re-subscribes and ccxt rebuilds the book from a fresh snapshot by
        itself: this check, before every watch, is what counts and logs it. An O(1) length test
        on every call (at 400 coins books update thousands of times a second), the scan only
        when a book is missing. (A check throttled to once per 0.1 s let ccxt's silent rebuild
        win under load, and unsubscribing every book to resync raced ccxt's own rebuild.)
        """
        books = getattr(self.client, "orderbooks", {})
        if not books or len(books) >= len(self.symbols):
            self._depth_missing = frozenset()
            return False  # not subscribed yet, or every book is there
        missing = frozenset(s for s in self.symbols if s not in books)
        dropped = missing - self._depth_missing
        self._depth_missing = missing
        return bool(dropped)

    def _depth_gap(self, reason: str) -> None:
        """Count and log a depth-stream sequence gap; ccxt's next watch re-subscribes and
        rebuilds the book from a snapshot."""
        if self.metrics is not None:
            self.metrics.dropped.labels("depth_resync").inc()
        _log().warning("feed_depth_resync", reason=reason)

    def _refresh_depth_quotes(self, now: datetime) -> None:
        """Every coin's quote from ccxt's books, once per tick. A watch returns one coin's book
        (the first to update), so under load a coin whose updates rarely come first (or whose
        book ccxt just rebuilt after a gap) kept an old quote while ccxt's book was fresh. The
        quote's time is the book's last event time (the venue's ``E``), never after ``now``."""
        books = getattr(self.client, "orderbooks", {})
        for symbol in self.symbols:
            book = books.get(symbol)
            if book is None or book.get("nonce") is None or book.get("timestamp") is None:
                continue  # not synced yet (no snapshot, or no update applied since)
            at = min(datetime.fromtimestamp(int(book["timestamp"]) / 1000, tz=UTC), now)
            held = self.books.get(symbol)
            if held is None or held.received_at < at:
                self._keep_depth_quote(symbol, book, at)

    def _on_depth(self, book: Any) -> None:
        now = self.clock()
        self.last_message["book"] = now
        symbol = book.get("symbol")
        if symbol in self.symbols:
            self._keep_depth_quote(symbol, book, now)

    def _keep_depth_quote(self, symbol: str, book: Any, at: datetime) -> None:
        """``symbol``'s quote from a ccxt order book (top level and depth), timed ``at``."""
        bids, asks = book.get("bids") or [], book.get("asks") or []
        if not bids or not asks:
            return
        quote = quote_from_levels(
            symbol, bids[0][0], asks[0][0], bids[0][1], asks[0][1], at,
            bids=_levels(bids), asks=_levels(asks),
        )  # fmt: skip
        if quote is not None:
            self.books[symbol] = quote

    async def _keep_watching(self, stream: str, watch: Callable[[], Any]) -> None:
        """Call ``watch`` for ever; reconnect with backoff on a network error, and end the
        feed on an error that retrying cannot fix."""
        failures = 0  # consecutive: the backoff schedule of exchange_calls, capped lower
        down = False
        while True:
            try:
                await watch()
            except ccxt.BaseError as exc:
                if not is_temporary(exc):
                    _log().error(
                        "feed_failed", stream=stream, error=type(exc).__name__, detail=str(exc)
                    )
                    self._failure = DataSourceError(
                        f"the {stream} stream failed with {type(exc).__name__}: "
                        f"{str(exc)[:200]} "
                        "(retrying cannot fix it: check data.exchange, the symbols and the keys)"
                    )
                    self._wakeup.set()
                    return
                down = True
                delay_s = backoff_delay(
                    self.settings.reconnect_backoff_s,
                    failures,
                    cap_s=self.settings.reconnect_backoff_max_s,
                )
                failures += 1
                if self.metrics is not None:
                    self.metrics.reconnects.labels(stream).inc()
                if self.on_error is not None:
                    self.on_error(stream, exc)
                _log().warning(
                    "feed_reconnecting", stream=stream, error=type(exc).__name__,
                    detail=str(exc)[:200], backoff_s=delay_s,
                )  # fmt: skip
                await asyncio.sleep(delay_s)
                continue
            failures = 0
            if down:
                down = False
                self._fill_now = True  # what closed while we were away comes over REST
                self._wakeup.set()
                _log().info("feed_reconnected", stream=stream)

    async def _heartbeat(self) -> None:
        """Tear down the connections when a stream has been silent too long."""
        limit_s = self.settings.heartbeat_timeout_s
        while True:
            await asyncio.sleep(min(1.0, limit_s / 4))
            now = self.clock()
            for stream in STREAMS:
                age_s = (now - self.last_message[stream]).total_seconds()
                if self.metrics is not None:
                    self.metrics.message_age.labels(stream).set(max(age_s, 0.0))
                if age_s > limit_s:
                    _log().warning("feed_heartbeat_missed", stream=stream, silent_s=age_s)
                    self.last_message[stream] = now
                    for ws in list(getattr(self.client, "clients", {}).values()):
                        ws.on_error(ccxt.NetworkError(f"no {stream} message for {age_s:.0f}s"))


def _levels(side: Any) -> tuple[tuple[float, float], ...]:
    """The first ``DEPTH_LEVELS`` (price, size) levels of a ccxt order book side."""
    return tuple((float(p), float(q)) for p, q, *_ in side[:DEPTH_LEVELS] if float(q) > 0.0)
