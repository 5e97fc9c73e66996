"""An OHLCV store of parquet files (a local folder or an object store), and the market-data
source over it.

Layout (the one of ``shared/data/real/ohlcv``): one file per symbol and timeframe,
``{BASE}_{QUOTE}-{TIMEFRAME}.parquet``, columns of :data:`~trading_core.market.schema.OHLCV_SCHEMA`,
sorted by open time, one row per timestamp. Funding rates, where present, live beside them as
``{BASE}_{QUOTE}-8h-funding_rate.parquet`` (timestamp, funding_rate). Writes are atomic: a temp
file in the same folder, then ``os.replace``, and strictly validated
(:func:`~trading_core.market.validation.validate_ohlcv`). Consumers read through
:meth:`ParquetStore.read_clean` (:func:`~trading_core.market.validation.clean_ohlcv`: bad rows
dropped and counted by reason). A file that cannot be read at all is a
:class:`~trading_core.errors.CorruptDataFileError` naming it.

The root is a URL (:mod:`trading_core.storage`): a plain path or ``file://`` keeps the local
fast path (``scan_parquet`` of the file, temp file + ``os.replace``); ``s3://bucket/prefix``
goes through fsspec. There a file is read with one GET of the whole object and written with one
PUT, so a reader sees either the old or the new object, never a mix.
"""

import io
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

from trading_core.errors import (
    ConfigError,
    CorruptDataFileError,
    DataSourceError,
    DataValidationError,
)
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
from trading_core.storage import StorageLocation, parse_location
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
def _reading(path: Path | str) -> Iterator[None]:
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


def _read(path: Path | str, collect: Callable[[], _T]) -> _T:
    with _reading(path):
        return collect()


class ParquetStore:
    """Read, write and append validated candles under ``root`` (a path or a store URL).

    ``root`` is the :class:`~pathlib.Path` of a local store (as before) and the
    :class:`~trading_core.storage.StorageLocation` of a remote one; ``url`` is the full URL."""

    def __init__(
        self, root: str | Path | StorageLocation, *, endpoint_url: str | None = None
    ) -> None:
        self.location = parse_location(root, endpoint_url=endpoint_url)
        self.url = self.location.url
        self.root: Path | StorageLocation = (
            self.location.local_path() if self.location.is_local else self.location
        )

    @property
    def is_local(self) -> bool:
        return self.location.is_local

    def file_name(self, symbol: str, timeframe: str) -> str:
        """``{BASE}_{QUOTE}-{TIMEFRAME}.parquet``."""
        base, quote = split_symbol(symbol)
        if timeframe not in TIMEFRAMES:
            raise DataValidationError(
                f"timeframe {timeframe!r} is not supported; allowed: {list(TIMEFRAMES)}"
            )
        return f"{base}_{quote}-{timeframe}.parquet"

    def path(self, symbol: str, timeframe: str) -> Path:
        """``root/{BASE}_{QUOTE}-{TIMEFRAME}.parquet`` of a local store (ValueError if remote)."""
        return self._candles(symbol, timeframe).local_path()

    def funding_path(self, symbol: str) -> Path:
        return self._funding(symbol).local_path()

    def file_url(self, symbol: str, timeframe: str) -> str:
        """The candle file's full URL (``file://`` or ``s3://``)."""
        return self._candles(symbol, timeframe).url

    def exists(self, symbol: str, timeframe: str) -> bool:
        return self._candles(symbol, timeframe).is_file()

    def list_symbols(self, timeframe: str) -> list[str]:
        """Symbols with a file for ``timeframe``, sorted."""
        found = []
        for name in self.location.names():
            match = _FILE_RE.match(name)
            if match and match["tf"] == timeframe:
                found.append(f"{match['base']}/{match['quote']}")
        return sorted(found)

    def _candles(self, symbol: str, timeframe: str) -> StorageLocation:
        return self.location.join(self.file_name(symbol, timeframe))

    def _funding(self, symbol: str) -> StorageLocation:
        base, quote = split_symbol(symbol)
        return self.location.join(f"{base}_{quote}-8h-funding_rate.parquet")

    def _source(self, file: StorageLocation) -> tuple[Path | str, Path | io.BytesIO] | None:
        """(name for messages, what polars reads) of a stored file; None when there is none.

        Remote: the whole object in one GET, so the read cannot mix an old and a new version."""
        if file.is_local:
            path = file.local_path()
            return (path, path) if path.is_file() else None
        data = file.fetch()
        return None if data is None else (file.url, io.BytesIO(data))

    def read(
        self,
        symbol: str,
        timeframe: str,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pl.DataFrame:
        """Candles with open time in ``[start, end)`` (open-ended where None); empty if no file."""
        found = self._source(self._candles(symbol, timeframe))
        if found is None:
            return empty_ohlcv()
        name, source = found
        with _reading(name):  # a remote object that is not parquet fails already at the scan
            lazy = pl.scan_parquet(source).select(list(OHLCV_SCHEMA))
        if start is not None:
            lazy = lazy.filter(pl.col("timestamp") >= start)
        if end is not None:
            lazy = lazy.filter(pl.col("timestamp") < end)
        return _read(name, lambda: lazy.collect().cast(pl.Schema(OHLCV_SCHEMA)))

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
        found = self._source(self._candles(symbol, timeframe))
        if found is None:
            return None
        name, source = found
        ts = pl.col("timestamp")
        first, last = _read(
            name,
            lambda: (
                pl.scan_parquet(source).select(ts.min(), ts.max().alias("last")).collect().row(0)
            ),
        )
        if not isinstance(first, datetime) or not isinstance(last, datetime):
            return None
        return first, last

    def write(self, symbol: str, timeframe: str, frame: pl.DataFrame) -> int:
        """Validate and replace the file atomically; returns the rows written."""
        bars = validate_ohlcv(frame, symbol=symbol, timeframe=timeframe).frame
        self._atomic_write(self._candles(symbol, timeframe), bars)
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
            self._atomic_write(self._candles(symbol, timeframe), merged)
        _log().info("store_appended", symbol=symbol, timeframe=timeframe, rows_added=added)
        return added

    def read_funding(self, symbol: str) -> pl.DataFrame:
        found = self._source(self._funding(symbol))
        if found is None:
            return empty_funding()
        name, source = found
        return _read(
            name,
            lambda: (
                pl.read_parquet(source).select(list(FUNDING_SCHEMA)).cast(pl.Schema(FUNDING_SCHEMA))
            ),
        )

    def write_funding(self, symbol: str, frame: pl.DataFrame) -> int:
        clean = (
            frame.select(list(FUNDING_SCHEMA))
            .cast(pl.Schema(FUNDING_SCHEMA))
            .unique("timestamp")
            .sort("timestamp")
        )
        self._atomic_write(self._funding(symbol), clean)
        return clean.height

    def _atomic_write(self, file: StorageLocation, frame: pl.DataFrame) -> None:
        if not file.is_local:
            # one PUT of the whole object: atomic on S3 (readers see the old or the new object)
            buffer = io.BytesIO()
            frame.write_parquet(buffer)
            file.put(buffer.getvalue())
            return
        path = file.local_path()
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
            raise ConfigError(
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
                f"(expected {self.store.file_name(symbol, timeframe)})"
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
