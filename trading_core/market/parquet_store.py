"""A local OHLCV store of parquet files, and the market-data source over it.

Layout (the one of ``shared/data/real/ohlcv``): one file per symbol and timeframe,
``{BASE}_{QUOTE}-{TIMEFRAME}.parquet``, columns of :data:`~trading_core.market.schema.OHLCV_SCHEMA`,
sorted by open time, one row per timestamp. Funding rates, where present, live beside them as
``{BASE}_{QUOTE}-8h-funding_rate.parquet`` (timestamp, funding_rate). Writes are atomic: a temp
file in the same folder, then ``os.replace``, and strictly validated
(:func:`~trading_core.market.validation.validate_ohlcv`). Consumers read through
:meth:`ParquetStore.read_clean` (:func:`~trading_core.market.validation.clean_ohlcv`: bad rows
dropped and counted by reason). A file that cannot be read at all is a
:class:`~trading_core.errors.CorruptDataFileError` naming it.
"""

import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import polars as pl

from trading_core.errors import CorruptDataFileError, DataSourceError
from trading_core.market.quality import DataQuality, sum_counts
from trading_core.market.schema import (
    FUNDING_SCHEMA,
    OHLCV_SCHEMA,
    empty_funding,
    empty_ohlcv,
    split_symbol,
    universe_frame,
)
from trading_core.market.source import MarketDataSource, require_utc_window
from trading_core.market.spread import corwin_schultz_window_bps, edge_spread_bps
from trading_core.market.validation import CleanBars, clean_ohlcv, validate_ohlcv
from trading_core.observability.logging import get_logger
from trading_core.types import TIMEFRAMES, timeframe_ms

_FILE_RE: Final = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)-(?P<tf>\w+)\.parquet$"
)
SPREAD_WINDOW: Final = timedelta(days=7)
READ_ERRORS: Final = (pl.exceptions.PolarsError, OSError)
_T = TypeVar("_T")


def _log() -> Any:
    """This module's logger, resolved per call: configure_logging() may run after import."""
    return get_logger(__name__)


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn a polars/OS read failure of ``path`` into one line naming the file and the fix."""
    try:
        yield
    except READ_ERRORS as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CorruptDataFileError(
            f"cannot read {path}: {cause}; the file is corrupt or not an OHLCV parquet file: "
            "delete it (or restore it from a backup) and fetch it again with "
            "'coin-engine data fetch'",
            path=str(path),
        ) from exc


def _read(path: Path, collect: Callable[[], _T]) -> _T:
    with _reading(path):
        return collect()


class ParquetStore:
    """Read, write and append validated candles under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, symbol: str, timeframe: str) -> Path:
        """``root/{BASE}_{QUOTE}-{TIMEFRAME}.parquet``."""
        base, quote = split_symbol(symbol)
        if timeframe not in TIMEFRAMES:
            raise ValueError(
                f"timeframe {timeframe!r} is not supported; allowed: {list(TIMEFRAMES)}"
            )
        return self.root / f"{base}_{quote}-{timeframe}.parquet"

    def funding_path(self, symbol: str) -> Path:
        base, quote = split_symbol(symbol)
        return self.root / f"{base}_{quote}-8h-funding_rate.parquet"

    def exists(self, symbol: str, timeframe: str) -> bool:
        return self.path(symbol, timeframe).is_file()

    def list_symbols(self, timeframe: str) -> list[str]:
        """Symbols with a file for ``timeframe``, sorted."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            match = _FILE_RE.match(entry.name)
            if match and match["tf"] == timeframe:
                found.append(f"{match['base']}/{match['quote']}")
        return sorted(found)

    def read(
        self,
        symbol: str,
        timeframe: str,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pl.DataFrame:
        """Candles with open time in ``[start, end)`` (open-ended where None); empty if no file."""
        path = self.path(symbol, timeframe)
        if not path.is_file():
            return empty_ohlcv()
        lazy = pl.scan_parquet(path).select(list(OHLCV_SCHEMA))
        if start is not None:
            lazy = lazy.filter(pl.col("timestamp") >= start)
        if end is not None:
            lazy = lazy.filter(pl.col("timestamp") < end)
        return _read(path, lambda: lazy.collect().cast(pl.Schema(OHLCV_SCHEMA)))

    def read_clean(
        self,
        symbol: str,
        timeframe: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        now: datetime | None = None,
    ) -> CleanBars:
        """:meth:`read` through :func:`~trading_core.market.validation.clean_ohlcv`: the usable
        candles, with the rows dropped and repaired counted by reason (the path every consumer
        reads by). ``now`` (default: the wall clock) decides whether the last candle is open."""
        bars = self.read(symbol, timeframe, start, end)
        return clean_ohlcv(bars, symbol=symbol, timeframe=timeframe, now=now)

    def last_timestamp(self, symbol: str, timeframe: str) -> datetime | None:
        """Open time of the newest stored candle, or None when nothing is stored."""
        span = self.time_span(symbol, timeframe)
        return span[1] if span is not None else None

    def time_span(self, symbol: str, timeframe: str) -> tuple[datetime, datetime] | None:
        """Open times of the oldest and newest stored candles, or None when nothing is stored."""
        path = self.path(symbol, timeframe)
        if not path.is_file():
            return None
        ts = pl.col("timestamp")
        lazy = pl.scan_parquet(path).select(ts.min(), ts.max().alias("last"))
        first, last = _read(path, lambda: lazy.collect().row(0))
        if not isinstance(first, datetime) or not isinstance(last, datetime):
            return None
        return first, last

    def write(self, symbol: str, timeframe: str, frame: pl.DataFrame) -> int:
        """Validate and replace the file atomically; returns the rows written."""
        bars = validate_ohlcv(frame, symbol=symbol, timeframe=timeframe).frame
        self._atomic_write(self.path(symbol, timeframe), bars)
        return bars.height

    def append(self, symbol: str, timeframe: str, frame: pl.DataFrame) -> int:
        """Merge ``frame`` into the stored candles without duplicating rows; returns the number
        of new rows. A new candle that contradicts a stored one is a DataValidationError."""
        existing = self.read(symbol, timeframe)
        merged = validate_ohlcv(
            pl.concat([existing, frame.select(list(OHLCV_SCHEMA))], how="vertical_relaxed"),
            symbol=symbol,
            timeframe=timeframe,
        ).frame
        added = merged.height - existing.height
        if added:
            self._atomic_write(self.path(symbol, timeframe), merged)
        _log().info("store_appended", symbol=symbol, timeframe=timeframe, rows_added=added)
        return added

    def read_funding(self, symbol: str) -> pl.DataFrame:
        path = self.funding_path(symbol)
        if not path.is_file():
            return empty_funding()
        return _read(
            path,
            lambda: (
                pl.read_parquet(path).select(list(FUNDING_SCHEMA)).cast(pl.Schema(FUNDING_SCHEMA))
            ),
        )

    def write_funding(self, symbol: str, frame: pl.DataFrame) -> int:
        clean = (
            frame.select(list(FUNDING_SCHEMA))
            .cast(pl.Schema(FUNDING_SCHEMA))
            .unique("timestamp")
            .sort("timestamp")
        )
        self._atomic_write(self.funding_path(symbol), clean)
        return clean.height

    def _atomic_write(self, path: Path, frame: pl.DataFrame) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            frame.write_parquet(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


class ParquetSource:
    """:class:`~trading_core.market.source.MarketDataSource` over a :class:`ParquetStore`.

    The universe snapshot is derived from candles alone: 24h quote volume = sum of close x volume
    over the candles opened in the 24h before ``as_of``; spread = a candle estimator over the
    7 days before ``as_of`` (EDGE by default, Corwin–Schultz on request: see
    :mod:`trading_core.market.spread` for why EDGE); listing date = the first stored candle.
    """

    name = "parquet"

    def __init__(
        self,
        store: ParquetStore,
        *,
        quote: str = "USDT",
        timeframe: str = "1h",
        spread_estimator: Literal["edge", "corwin_schultz"] = "edge",
    ) -> None:
        if spread_estimator not in ("edge", "corwin_schultz"):
            raise ValueError(
                f"spread_estimator {spread_estimator!r}; allowed: 'edge', 'corwin_schultz'"
            )
        self.store = store
        self.quote = quote
        self.timeframe = timeframe
        self.spread_estimator = spread_estimator

    def list_symbols(self) -> list[str]:
        return [s for s in self.store.list_symbols(self.timeframe) if s.endswith(f"/{self.quote}")]

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, *, start: datetime, end: datetime
    ) -> pl.DataFrame:
        require_utc_window(start, end)
        if not self.store.exists(symbol, timeframe):
            raise DataSourceError(
                f"no {timeframe} candles for {symbol!r} in {self.store.root} "
                f"(expected {self.store.path(symbol, timeframe).name})"
            )
        return self.store.read_clean(symbol, timeframe, start, end).frame

    def funding_rates(self, symbol: str, *, start: datetime, end: datetime) -> pl.DataFrame:
        require_utc_window(start, end)
        rates = self.store.read_funding(symbol)
        return rates.filter(pl.col("timestamp").is_between(start, end, closed="left"))

    def universe_snapshot(self, as_of: datetime) -> pl.DataFrame:
        return self.universe_snapshot_with_quality(as_of)[0]

    def universe_snapshot_with_quality(self, as_of: datetime) -> tuple[pl.DataFrame, DataQuality]:
        """The snapshot and what its reads left out: candles rejected/repaired per reason and
        corrupt files, which are skipped (logged) unless no file could be read at all."""
        require_utc_window(as_of - timedelta(hours=1), as_of)
        rows: list[dict[str, object]] = []
        reads: list[CleanBars] = []
        corrupt: list[CorruptDataFileError] = []
        symbols = self.list_symbols()
        for symbol in symbols:
            try:
                row, clean = self._snapshot_row(symbol, as_of)
            except CorruptDataFileError as exc:
                corrupt.append(exc)
                continue
            if clean is not None:
                reads.append(clean)
            if row is not None:
                rows.append(row)
        if corrupt and len(corrupt) == len(symbols):
            raise CorruptDataFileError.all_unreadable(
                corrupt, f"{self.timeframe} candle files in {self.store.root}"
            )
        for skipped in corrupt:
            _log().warning(
                "universe_file_skipped", path=skipped.path, reason="corrupt", error=str(skipped)
            )
        quality = DataQuality(
            rejected_candles=sum_counts(c.rejected for c in reads),
            repaired_candles=sum_counts(c.repaired for c in reads),
            corrupt_files=tuple(e.path for e in corrupt),
        )
        return universe_frame(rows), quality

    def newest_close(self) -> datetime | None:
        """Close time of the newest candle in the store (corrupt files skipped), or None."""
        step = timedelta(milliseconds=timeframe_ms(self.timeframe))
        newest: datetime | None = None
        for symbol in self.list_symbols():
            try:
                span = self.store.time_span(symbol, self.timeframe)
            except CorruptDataFileError:
                continue
            if span is not None and (newest is None or span[1] + step > newest):
                newest = span[1] + step
        return newest

    def _snapshot_row(
        self, symbol: str, as_of: datetime
    ) -> tuple[dict[str, object] | None, CleanBars | None]:
        span = self.store.time_span(symbol, self.timeframe)
        if span is None or span[0] >= as_of:
            return None, None
        first = span[0]
        clean = self.store.read_clean(symbol, self.timeframe, as_of - SPREAD_WINDOW, as_of)
        recent = clean.frame
        last_day = recent.filter(pl.col("timestamp") >= as_of - timedelta(days=1))
        base, quote = split_symbol(symbol)
        spread = self._spread_bps(recent)
        listing = first.astimezone(UTC).date()
        row: dict[str, object] = {
            "symbol": symbol,
            "base": base,
            "quote": quote,
            "last_price": float(recent["close"][-1]) if recent.height else None,
            "daily_volume_usd": float((last_day["close"] * last_day["volume"]).sum()),
            "spread_bps": spread if math.isfinite(spread) else None,
            "listing_date": listing,
            "age_days": (as_of.date() - listing).days,
        }
        return row, clean

    def _spread_bps(self, bars: pl.DataFrame) -> float:
        if self.spread_estimator == "corwin_schultz":
            return corwin_schultz_window_bps(bars)
        return edge_spread_bps(bars["open"], bars["high"], bars["low"], bars["close"])


def universe_snapshot_with_quality(
    source: MarketDataSource, as_of: datetime
) -> tuple[pl.DataFrame, DataQuality]:
    """Any source's snapshot; the quality report where the source reads candle files (parquet),
    an empty one otherwise (the synthetic and ccxt sources validate as they serve)."""
    if isinstance(source, ParquetSource):
        return source.universe_snapshot_with_quality(as_of)
    return source.universe_snapshot(as_of), DataQuality()
