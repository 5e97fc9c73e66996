"""Market-data sensors: the closed bars Hamilton decides on, from history or from a venue.

* :class:`ReplayFeed` (demos, tests, benchmarks): the source's candles of ``[start, end)``,
  one tick per bar open time, ``speed`` market seconds per wall second (0: no waiting). Its clock is
  the market's: a tick's ``now`` is the bar's close. A coin whose candle file is corrupt is
  skipped with a logged line (no history, no ticks); if every coin's is, the replay cannot start
  (:class:`~trading_core.errors.CorruptDataFileError`). The ``extra_symbols`` (the BTC
  reference) are optional: one the source does not have is left out, logged.
* :class:`PollingFeed` (paper/shadow/live on a real venue): polls the source every
  ``market_poll_interval_s`` (ccxt's own rate limiter spaces the requests); a tick is emitted
  once every coin has the bar that just closed, or when ``grace_s`` has passed since its close
  (coins still without it then get a ``missing_bar`` hold). A temporary exchange error only
  delays the coin; it is counted as an error of the ``market_data`` component.

* :class:`~hamilton_exec.market_data.stream_feed.StreamingFeed` (the default on a venue): closed
bars and
  books over ccxt.pro websockets, REST for what the stream missed (see its module).

All supply the warm-up history (``history_bars`` before the first tick) and funding.
"""

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import polars as pl

from hamilton_exec.market_data.window import Candle, Tick, candles_of, utc_ms
from trading_core.errors import (
    CoinEngineError,
    CorruptDataFileError,
    DataSourceError,
    RetryableError,
)
from trading_core.market.schema import empty_ohlcv
from trading_core.market.source import MarketDataSource
from trading_core.observability.logging import get_logger
from trading_core.types import timeframe_ms


def _log() -> object:
    return get_logger(__name__)


class Feed(Protocol):
    """What the service and the warm start need from a source of closed bars."""

    def ticks(self, *, after_ms: int | None = None) -> AsyncGenerator[Tick, None]:
        """One tick per closed bar after ``after_ms`` (all bars when None), in time order."""
        ...

    def history(self, symbol: str, *, before: datetime | None = None) -> pl.DataFrame:
        """The warm-up bars of ``symbol`` before the first tick (or before ``before``)."""
        ...

    def funding(self) -> dict[str, pl.DataFrame]: ...

    def known_symbols(self) -> frozenset[str]:
        """Symbols this feed can give history for (the BTC reference is optional)."""
        ...


class ReplayFeed:
    """Historical ticks over ``[start, end)`` (see the module docstring)."""

    def __init__(
        self,
        source: MarketDataSource,
        symbols: Sequence[str],
        timeframe: str,
        *,
        start: datetime,
        end: datetime,
        history_bars: int,
        speed: float = 0.0,
        extra_symbols: Sequence[str] = (),
    ) -> None:
        self.timeframe, self.speed = timeframe, speed
        self.start, self.end = start, end
        step = timedelta(milliseconds=timeframe_ms(timeframe))
        self.history_start = start - history_bars * step
        self.bars = self._read_all(source, symbols, extra_symbols)
        self.funding_frames = {
            s: source.funding_rates(s, start=self.history_start, end=end) for s in self.bars
        }
        self._candles = {
            s: {c.open_ms: c for c in candles_of(b.filter(pl.col("timestamp") >= start))}
            for s, b in self.bars.items()
        }

    def _read_all(
        self, source: MarketDataSource, symbols: Sequence[str], extra: Sequence[str]
    ) -> dict[str, pl.DataFrame]:
        """Every coin's candles up front; corrupt files and a missing extra symbol skipped."""
        bars: dict[str, pl.DataFrame] = {}
        corrupt: list[CorruptDataFileError] = []
        skipped: list[tuple[str, str, str]] = []
        for s in sorted(set(symbols) | set(extra)):
            try:
                bars[s] = source.fetch_ohlcv(
                    s, self.timeframe, start=self.history_start, end=self.end
                )
            except CorruptDataFileError as exc:
                corrupt.append(exc)
                skipped.append((s, "corrupt_file", str(exc)))
            except DataSourceError as exc:
                if s not in extra or s in symbols:
                    raise
                skipped.append((s, "optional_symbol_missing", str(exc)))
        if corrupt and not set(symbols) & set(bars):
            raise CorruptDataFileError.all_unreadable(corrupt, f"{self.timeframe} candle files")
        for symbol, reason, error in skipped:
            get_logger(__name__).warning(
                "replay_symbol_skipped", symbol=symbol, reason=reason, error=error
            )
        return bars

    def history(self, symbol: str, *, before: datetime | None = None) -> pl.DataFrame:
        """Bars before ``before`` (default: the first tick); empty for a skipped coin."""
        cutoff = before or self.start
        if symbol not in self.bars:
            return empty_ohlcv()
        return self.bars[symbol].filter(pl.col("timestamp") < cutoff)

    def known_symbols(self) -> frozenset[str]:
        return frozenset(self.bars)

    def funding(self) -> dict[str, pl.DataFrame]:
        return dict(self.funding_frames)

    def open_times(self) -> list[int]:
        times: set[int] = set()
        for candles in self._candles.values():
            times.update(candles)
        return sorted(times)

    async def ticks(self, *, after_ms: int | None = None) -> AsyncGenerator[Tick, None]:
        step_ms = timeframe_ms(self.timeframe)
        delay_s = 0.0 if self.speed <= 0 else step_ms / 1000 / self.speed
        for open_ms in self.open_times():
            if after_ms is not None and open_ms <= after_ms:
                continue
            candles = {s: c[open_ms] for s, c in self._candles.items() if open_ms in c}
            yield Tick(open_ms, candles, utc_ms(open_ms + step_ms))
            await asyncio.sleep(delay_s)


class PollingFeed:
    """Closed bars polled from a live source (see the module docstring)."""

    def __init__(
        self,
        source: MarketDataSource,
        symbols: Sequence[str],
        timeframe: str,
        *,
        history_bars: int,
        poll_interval_s: float,
        grace_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.source, self.timeframe = source, timeframe
        self.symbols = sorted(symbols)
        self.history_bars = history_bars
        self.poll_interval_s, self.grace_s = poll_interval_s, grace_s
        self.clock = clock
        self.on_error = on_error
        self.step_ms = timeframe_ms(timeframe)
        now_ms = int(self.clock().timestamp() * 1000)
        self.next_open_ms = (now_ms // self.step_ms - 1) * self.step_ms

    def history(self, symbol: str, *, before: datetime | None = None) -> pl.DataFrame:
        """The ``history_bars`` bars before the next bar to decide (``before`` is ignored: a
        restart continues at the newest closed bar, the saved state's last bar is older)."""
        end = utc_ms(self.next_open_ms)
        start = utc_ms(self.next_open_ms - self.history_bars * self.step_ms)
        return self.source.fetch_ohlcv(symbol, self.timeframe, start=start, end=end)

    def known_symbols(self) -> frozenset[str]:
        quote = self.symbols[0].split("/")[1]
        return frozenset({*self.symbols, f"BTC/{quote}"} & set(self.source.list_symbols()))

    def funding(self) -> dict[str, pl.DataFrame]:
        end = self.clock()
        start = end - timedelta(days=7)
        return {s: self.source.funding_rates(s, start=start, end=end) for s in self.symbols}

    async def ticks(self, *, after_ms: int | None = None) -> AsyncGenerator[Tick, None]:
        if after_ms is not None:
            self.next_open_ms = max(self.next_open_ms, after_ms + self.step_ms)
        while True:
            close = utc_ms(self.next_open_ms + self.step_ms)
            while self.clock() < close:
                await asyncio.sleep(
                    min(self.poll_interval_s, (close - self.clock()).total_seconds())
                )
            candles = await self._collect(close)
            yield Tick(self.next_open_ms, candles, self.clock())
            self.next_open_ms += self.step_ms

    async def _collect(self, close: datetime) -> dict[str, Candle]:
        found: dict[str, Candle] = {}
        while True:
            for symbol in self.symbols:
                if symbol not in found:
                    candle = await asyncio.to_thread(self._fetch, symbol, self.next_open_ms)
                    if candle is not None:
                        found[symbol] = candle
            late = (self.clock() - close).total_seconds() >= self.grace_s
            if len(found) == len(self.symbols) or late:
                return found
            await asyncio.sleep(self.poll_interval_s)

    def _fetch(self, symbol: str, open_ms: int) -> Candle | None:
        """The closed bar of ``symbol`` opened at ``open_ms`` over REST (validated by the
        source), or None when it is not there yet or was rejected (the error is reported)."""
        start = utc_ms(open_ms)
        try:
            bars = self.source.fetch_ohlcv(
                symbol,
                self.timeframe,
                start=start,
                end=start + timedelta(milliseconds=self.step_ms),
            )
        except RetryableError as exc:
            if self.on_error:
                self.on_error(symbol, exc)
            return None
        except CoinEngineError as exc:  # rejected candles: a missing bar with the error logged
            if self.on_error:
                self.on_error(symbol, exc)
            return None
        candles = [c for c in candles_of(bars) if c.open_ms == open_ms]
        return candles[0] if candles else None
