"""Fill a :class:`~trading_core.market.parquet_store.ParquetStore` from any market-data source.

Resumable: each symbol restarts after the newest stored candle (and backfills before the oldest
when ``since`` is earlier), and the store's ``append`` merges without duplicating, so a rerun
(or a run after a crash) adds only what is missing.
Candles are fetched and appended in chunks, so an interrupted run keeps what it already got.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, Literal

from trading_core.errors import CoinEngineError, DataValidationError
from trading_core.market.parquet_store import ParquetStore
from trading_core.market.source import MarketDataSource, require_utc_window
from trading_core.observability.logging import get_logger
from trading_core.types import timeframe_ms

CHUNK_BARS: Final = 5000
ProgressCallback = Callable[[str, int, int], None]
"""``progress(symbol, bars_done, bars_total)`` after each chunk (bars counted on the grid)."""


def _log() -> Any:
    """This module's logger, resolved per call: configure_logging() may run after import."""
    return get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SymbolFetch:
    """What one symbol's fetch did: the window asked for and the rows that were new."""

    symbol: str
    start: datetime
    end: datetime
    rows_added: int
    up_to_date: bool


@dataclass(frozen=True, slots=True)
class FetchSummary:
    """Per-symbol results and, with ``on_error="skip"``, the symbols that failed and why."""

    timeframe: str
    fetched: tuple[SymbolFetch, ...]
    failed: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "failed", MappingProxyType(dict(self.failed)))

    @property
    def rows_added(self) -> int:
        return sum(f.rows_added for f in self.fetched)


def fetch_to_store(
    source: MarketDataSource,
    store: ParquetStore,
    symbols: Sequence[str],
    timeframe: str,
    *,
    since: datetime,
    until: datetime | None = None,
    progress: ProgressCallback | None = None,
    on_error: Literal["raise", "skip"] = "raise",
) -> FetchSummary:
    """Fetch ``[since, until)`` (``until`` default: now) of each symbol into ``store``,
    resuming after the newest stored candle. ``on_error="skip"`` records a symbol's
    CoinEngineError in ``failed`` and goes on with the next symbol."""
    end = until if until is not None else datetime.now(UTC)
    require_utc_window(since, end)
    step = timedelta(milliseconds=timeframe_ms(timeframe))
    if not symbols:
        raise DataValidationError("symbols is empty; name at least one, e.g. ['BTC/USDT']")
    fetched: list[SymbolFetch] = []
    failed: dict[str, str] = {}
    for symbol in symbols:
        try:
            fetched.append(
                _fetch_symbol(source, store, symbol, timeframe, since, end, step, progress)
            )
        except CoinEngineError as exc:
            if on_error == "raise":
                raise
            failed[symbol] = f"{type(exc).__name__}: {exc}"
            _log().error(
                "fetch_symbol_failed", symbol=symbol, timeframe=timeframe, error=failed[symbol]
            )
    return FetchSummary(timeframe, tuple(fetched), failed)


def _fetch_symbol(
    source: MarketDataSource,
    store: ParquetStore,
    symbol: str,
    timeframe: str,
    since: datetime,
    end: datetime,
    step: timedelta,
    progress: ProgressCallback | None,
) -> SymbolFetch:
    windows = _missing_windows(store, symbol, timeframe, since, end, step)
    total_bars = sum(_bars_between(a, b, step) for a, b in windows)
    if not windows:
        _log().info("fetch_up_to_date", symbol=symbol, timeframe=timeframe)
        if progress:
            progress(symbol, 0, 0)
        return SymbolFetch(symbol, since, end, 0, up_to_date=True)
    added = 0
    done_bars = 0
    for window_start, window_end in windows:
        chunk_start = window_start
        while chunk_start < window_end:
            chunk_end = min(chunk_start + CHUNK_BARS * step, window_end)
            bars = source.fetch_ohlcv(symbol, timeframe, start=chunk_start, end=chunk_end)
            if not bars.is_empty():
                added += store.append(symbol, timeframe, bars)
            done_bars += _bars_between(chunk_start, chunk_end, step)
            chunk_start = chunk_end
            if progress:
                progress(symbol, done_bars, total_bars)
    _log().info(
        "fetch_symbol_done",
        symbol=symbol,
        timeframe=timeframe,
        windows=[(a.isoformat(), b.isoformat()) for a, b in windows],
        rows_added=added,
    )
    return SymbolFetch(symbol, windows[0][0], windows[-1][1], added, up_to_date=False)


def _missing_windows(
    store: ParquetStore,
    symbol: str,
    timeframe: str,
    since: datetime,
    end: datetime,
    step: timedelta,
) -> list[tuple[datetime, datetime]]:
    """Before the oldest stored candle (backfill) and after the newest (resume); the whole
    ``[since, end)`` when nothing is stored. Holes in between are the exchange's own gaps."""
    span = store.time_span(symbol, timeframe)
    if span is None:
        return [(since, end)]
    first, last = span
    windows = []
    if since < first:
        windows.append((since, min(first, end)))
    if last + step < end:
        windows.append((max(since, last + step), end))
    return [(a, b) for a, b in windows if a < b]


def _bars_between(start: datetime, end: datetime, step: timedelta) -> int:
    return int((end - start) / step)
