"""The one OHLCV validator every source runs its candles through.

Repairs are few and always logged with their reason: exact duplicate rows are dropped and a
still-open last candle is dropped. Everything else that is wrong is *rejected* with a
:class:`~trading_core.errors.DataValidationError` whose message and ``rows`` name the offending
candles: conflicting duplicates, NaN/inf, non-positive prices, negative volume, inverted bars
(high < max(open, close), low > min(open, close), high < low), nulls and off-grid timestamps.
Gaps in the time grid are reported, never filled.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import polars as pl

from trading_core.errors import DataValidationError
from trading_core.market.schema import OHLCV_COLUMNS, OHLCV_SCHEMA, PRICE_COLUMNS, TIMESTAMP_DTYPE
from trading_core.observability.logging import get_logger
from trading_core.types import timeframe_ms

MAX_LISTED_ROWS: Final = 20


def _log() -> Any:
    """This module's logger, resolved per call: configure_logging() may run after import."""
    return get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Gap:
    """A hole in the time grid: ``start`` is the first missing open time, ``end`` the open time of
    the next candle present (exclusive), ``missing_bars`` the number of absent candles."""

    start: datetime
    end: datetime
    missing_bars: int

    def __post_init__(self) -> None:
        if self.missing_bars <= 0 or self.end <= self.start:
            raise ValueError(f"gap {self.start}..{self.end} with {self.missing_bars} bars is empty")


@dataclass(frozen=True, slots=True)
class ValidatedBars:
    """Candles that passed validation, with what was repaired and what is missing."""

    frame: pl.DataFrame
    gaps: tuple[Gap, ...]
    duplicates_dropped: int
    open_candle_dropped: bool

    @property
    def missing_bars(self) -> int:
        return sum(g.missing_bars for g in self.gaps)


def validate_ohlcv(
    frame: pl.DataFrame, *, symbol: str, timeframe: str, now: datetime | None = None
) -> ValidatedBars:
    """Cast ``frame`` to the OHLCV schema, sort it, repair what is safe and reject the rest.

    ``now`` (UTC-aware, default: the wall clock) decides whether the last candle is still open:
    open time + timeframe > now. Raises DataValidationError naming the offending rows.
    """
    step_ms = timeframe_ms(timeframe)
    clock = now if now is not None else datetime.now(UTC)
    if clock.tzinfo is None:
        raise ValueError(f"now={clock!r} is naive; pass a UTC-aware datetime")
    bars = _cast_to_schema(frame, symbol=symbol).sort("timestamp", maintain_order=True)
    _reject(_null_rows(bars), symbol=symbol, timeframe=timeframe, what="null values")
    bars, duplicates_dropped = _drop_exact_duplicates(bars, symbol=symbol, timeframe=timeframe)
    _reject(_bad_value_rows(bars, step_ms), symbol=symbol, timeframe=timeframe, what="bad candles")
    bars, open_dropped = _drop_open_candle(bars, step_ms, clock, symbol=symbol, timeframe=timeframe)
    gaps = find_gaps(bars, timeframe)
    if gaps:
        _log().info(
            "ohlcv_gaps_found",
            symbol=symbol,
            timeframe=timeframe,
            gaps=len(gaps),
            missing_bars=sum(g.missing_bars for g in gaps),
            reason="holes in the time grid are reported, never filled",
        )
    return ValidatedBars(bars, gaps, duplicates_dropped, open_dropped)


def find_gaps(frame: pl.DataFrame, timeframe: str) -> tuple[Gap, ...]:
    """Holes in the regular ``timeframe`` grid of a sorted, de-duplicated OHLCV frame."""
    step_ms = timeframe_ms(timeframe)
    ms = frame.select(pl.col("timestamp").dt.epoch("ms").alias("ms"))
    holes = ms.with_columns(nxt=pl.col("ms").shift(-1)).filter(
        pl.col("nxt") - pl.col("ms") > step_ms
    )
    return tuple(
        Gap(
            start=_to_datetime(prev + step_ms),
            end=_to_datetime(nxt),
            missing_bars=(nxt - prev) // step_ms - 1,
        )
        for prev, nxt in holes.select("ms", "nxt").iter_rows()
    )


def _to_datetime(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def _cast_to_schema(frame: pl.DataFrame, *, symbol: str) -> pl.DataFrame:
    missing = [c for c in OHLCV_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{symbol}: OHLCV frame lacks columns {missing}; required: {list(OHLCV_COLUMNS)}"
        )
    ts_dtype = frame.schema["timestamp"]
    if ts_dtype.is_integer():
        ts = pl.from_epoch(pl.col("timestamp"), time_unit="ms").dt.replace_time_zone("UTC")
    elif isinstance(ts_dtype, pl.Datetime):
        if ts_dtype.time_zone is None:
            raise DataValidationError(
                f"{symbol}: timestamp column is naive {ts_dtype}; candles must carry UTC time"
            )
        ts = pl.col("timestamp").dt.convert_time_zone("UTC")
    else:
        raise DataValidationError(
            f"{symbol}: timestamp column has dtype {ts_dtype}; allowed: integer epoch ms "
            "or a timezone-aware Datetime"
        )
    try:
        return frame.select(
            ts.dt.cast_time_unit("ms").cast(TIMESTAMP_DTYPE).alias("timestamp"),
            *(pl.col(c).cast(OHLCV_SCHEMA[c], strict=True) for c in OHLCV_COLUMNS[1:]),
        )
    except pl.exceptions.InvalidOperationError as exc:
        raise DataValidationError(f"{symbol}: OHLCV values are not numeric: {exc}") from exc


def _null_rows(bars: pl.DataFrame) -> pl.DataFrame:
    any_null = pl.any_horizontal(pl.col(c).is_null() for c in OHLCV_COLUMNS)
    return bars.filter(any_null).with_columns(reason=pl.lit("null value"))


def _drop_exact_duplicates(
    bars: pl.DataFrame, *, symbol: str, timeframe: str
) -> tuple[pl.DataFrame, int]:
    unique = bars.unique(maintain_order=True)
    dropped = bars.height - unique.height
    conflicting = unique.filter(pl.col("timestamp").is_duplicated()).with_columns(
        reason=pl.lit("conflicting duplicate: same timestamp, different values")
    )
    _reject(conflicting, symbol=symbol, timeframe=timeframe, what="conflicting duplicates")
    if dropped:
        _log().warning(
            "ohlcv_duplicates_dropped",
            symbol=symbol,
            timeframe=timeframe,
            count=dropped,
            reason="exact duplicate rows (same timestamp and values)",
        )
    return unique, dropped


def _bad_value_rows(bars: pl.DataFrame, step_ms: int) -> pl.DataFrame:
    o, h, low, c, v = (pl.col(n) for n in ("open", "high", "low", "close", "volume"))
    checks: list[tuple[pl.Expr, str]] = [
        (pl.any_horizontal(pl.col(n).is_nan() for n in (*PRICE_COLUMNS, "volume")), "NaN value"),
        (pl.any_horizontal(pl.col(n).is_infinite() for n in (*PRICE_COLUMNS, "volume")), "inf"),
        (pl.any_horizontal(pl.col(n) <= 0 for n in PRICE_COLUMNS), "non-positive price"),
        (v < 0, "negative volume"),
        (h < low, "high < low"),
        (h < pl.max_horizontal(o, c), "high < max(open, close)"),
        (low > pl.min_horizontal(o, c), "low > min(open, close)"),
        (pl.col("timestamp").dt.epoch("ms") % step_ms != 0, "timestamp off the timeframe grid"),
    ]
    reason = pl.concat_str(
        [pl.when(cond).then(pl.lit(label)) for cond, label in checks],
        separator="; ",
        ignore_nulls=True,
    )
    return bars.with_columns(reason=reason).filter(pl.col("reason") != "")


def _drop_open_candle(
    bars: pl.DataFrame, step_ms: int, now: datetime, *, symbol: str, timeframe: str
) -> tuple[pl.DataFrame, bool]:
    now_ms = int(now.timestamp() * 1000)
    still_open = bars.filter(pl.col("timestamp").dt.epoch("ms") + step_ms > now_ms)
    if still_open.is_empty():
        return bars, False
    if still_open.height > 1:
        _reject(
            still_open.head(-1).with_columns(reason=pl.lit(f"candle not closed before now={now}")),
            symbol=symbol,
            timeframe=timeframe,
            what="candles from the future",
        )
    _log().info(
        "ohlcv_open_candle_dropped",
        symbol=symbol,
        timeframe=timeframe,
        open_time=still_open["timestamp"][0].isoformat(),
        now=now.isoformat(),
        reason="open time + timeframe is after now: the candle is still forming",
    )
    return bars.head(-1), True


def _reject(offending: pl.DataFrame, *, symbol: str, timeframe: str, what: str) -> None:
    if offending.is_empty():
        return
    rows = [_row_dict(r) for r in offending.head(MAX_LISTED_ROWS).iter_rows(named=True)]
    shown = "; ".join(_row_text(r) for r in rows)
    more = f" (first {MAX_LISTED_ROWS} shown)" if offending.height > MAX_LISTED_ROWS else ""
    raise DataValidationError(
        f"{symbol} {timeframe}: {offending.height} rows with {what}{more}: {shown}", rows=rows
    )


def _row_dict(row: dict[str, Any]) -> dict[str, Any]:
    ts = row.get("timestamp")
    return {**row, "timestamp": ts.isoformat() if isinstance(ts, datetime) else ts}


def _row_text(row: dict[str, Any]) -> str:
    values = ", ".join(f"{k}={row.get(k)}" for k in OHLCV_COLUMNS[1:])
    return f"[{row.get('timestamp')} {values}: {row.get('reason')}]"
