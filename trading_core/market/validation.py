"""The OHLCV checks every candle goes through, in two modes that share one set of checks.

* :func:`clean_ohlcv` (READS: every consumer of candles: the ranking's universe snapshot, training,
  asset checks, Hamilton's feeds, the ccxt and synthetic sources) repairs what is safe and drops
  each bad row, counting it under a stable reason label; one bad candle never costs a coin.
* :func:`validate_ohlcv` (WRITES: the store's ``write``/``append``) runs the very same stages and
  raises :class:`~trading_core.errors.DataValidationError` naming the rows instead of dropping
  them, so nothing bad is ever stored.

Repairs (logged with their reason): rows out of time order are sorted (``out_of_order``),
exact duplicate rows dropped (``exact_duplicate``), a still-open last candle dropped
(``open_candle``). Rejects (the row is dropped, logged with its reason and count; a row failing
several checks counts under the first in :data:`REJECT_REASONS`): ``null_value``,
``conflicting_duplicate`` (same timestamp, different values: every row of that timestamp goes,
there is no telling which is right), ``nan_value``, ``infinite_value``, ``non_positive_price``,
``negative_volume``, inverted bars (``high_below_low``, ``high_below_open_close``,
``low_above_open_close``), ``off_grid_timestamp``, ``implausible_volume`` and
``future_candle`` (closed after ``now``, other than the last). Gaps are reported, never filled.

Implausible volume: a bar whose quote volume ``close * volume`` exceeds
:data:`MAX_BAR_QUOTE_VOLUME` (1e12 quote units). The rule looks at the row alone, on purpose:
every consumer reads a different window (the ranking 7 days, training ``history_days``, Hamilton
a warm-up plus the replay) and must reach the same verdict on the same candle; an outlier rule
against the coin's own median would keep a candle in one window and drop it in another, and it
would drop real listing days and manias, which trade 100-1000x a coin's median. The bound: the
largest 1h bar of the real Binance sample (2020-12..2021-07, the 2021 mania) is DOGE/USDT at
2.4e9 USDT, and the whole spot market has never traded 1e12 USD in a day, so one pair's one bar
above it is corruption or a unit error (volume 1e15), never trading. It is in quote units and
assumes a USD-like quote (USDT, USDC, BUSD), the engine's.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

import polars as pl

from trading_core.errors import DataValidationError
from trading_core.market.schema import OHLCV_COLUMNS, OHLCV_SCHEMA, PRICE_COLUMNS, TIMESTAMP_DTYPE
from trading_core.observability.logging import get_logger
from trading_core.types import timeframe_ms

MAX_LISTED_ROWS: Final = 20
MAX_BAR_QUOTE_VOLUME: Final = 1e12

REASON_NULL: Final = "null_value"
REASON_CONFLICTING_DUPLICATE: Final = "conflicting_duplicate"
REASON_NAN: Final = "nan_value"
REASON_INF: Final = "infinite_value"
REASON_NON_POSITIVE_PRICE: Final = "non_positive_price"
REASON_NEGATIVE_VOLUME: Final = "negative_volume"
REASON_HIGH_BELOW_LOW: Final = "high_below_low"
REASON_HIGH_BELOW_BODY: Final = "high_below_open_close"
REASON_LOW_ABOVE_BODY: Final = "low_above_open_close"
REASON_OFF_GRID: Final = "off_grid_timestamp"
REASON_IMPLAUSIBLE_VOLUME: Final = "implausible_volume"
REASON_FUTURE_CANDLE: Final = "future_candle"
REJECT_REASONS: Final = (
    REASON_NULL,
    REASON_CONFLICTING_DUPLICATE,
    REASON_NAN,
    REASON_INF,
    REASON_NON_POSITIVE_PRICE,
    REASON_NEGATIVE_VOLUME,
    REASON_HIGH_BELOW_LOW,
    REASON_HIGH_BELOW_BODY,
    REASON_LOW_ABOVE_BODY,
    REASON_OFF_GRID,
    REASON_IMPLAUSIBLE_VOLUME,
    REASON_FUTURE_CANDLE,
)
REPAIR_OUT_OF_ORDER: Final = "out_of_order"
REPAIR_EXACT_DUPLICATE: Final = "exact_duplicate"
REPAIR_OPEN_CANDLE: Final = "open_candle"
REPAIR_REASONS: Final = (REPAIR_OUT_OF_ORDER, REPAIR_EXACT_DUPLICATE, REPAIR_OPEN_CANDLE)

DESCRIPTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        REASON_NULL: "null value",
        REASON_CONFLICTING_DUPLICATE: "conflicting duplicate: same timestamp, different values",
        REASON_NAN: "NaN value",
        REASON_INF: "inf value",
        REASON_NON_POSITIVE_PRICE: "non-positive price",
        REASON_NEGATIVE_VOLUME: "negative volume",
        REASON_HIGH_BELOW_LOW: "high < low",
        REASON_HIGH_BELOW_BODY: "high < max(open, close)",
        REASON_LOW_ABOVE_BODY: "low > min(open, close)",
        REASON_OFF_GRID: "timestamp off the timeframe grid",
        REASON_IMPLAUSIBLE_VOLUME: f"quote volume close*volume above {MAX_BAR_QUOTE_VOLUME:.0e}",
        REASON_FUTURE_CANDLE: "candle from the future: not closed before now",
        REPAIR_OUT_OF_ORDER: "rows out of time order, sorted",
        REPAIR_EXACT_DUPLICATE: "exact duplicate rows (same timestamp and values), dropped",
        REPAIR_OPEN_CANDLE: "open time + timeframe is after now: the candle is still forming",
    }
)
_REASON: Final = "reason"


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
    """Candles that passed strict validation, with what was repaired and what is missing."""

    frame: pl.DataFrame
    gaps: tuple[Gap, ...]
    duplicates_dropped: int
    open_candle_dropped: bool

    @property
    def missing_bars(self) -> int:
        return sum(g.missing_bars for g in self.gaps)


@dataclass(frozen=True, slots=True)
class CleanBars:
    """The usable candles of a read, with the rows dropped (``rejected``) and fixed (``repaired``)
    counted by reason label, and the holes left in the time grid."""

    frame: pl.DataFrame
    rejected: Mapping[str, int] = field(default_factory=dict)
    repaired: Mapping[str, int] = field(default_factory=dict)
    gaps: tuple[Gap, ...] = ()

    def __post_init__(self) -> None:
        for name in ("rejected", "repaired"):
            counts = {k: v for k, v in getattr(self, name).items() if v}
            object.__setattr__(self, name, MappingProxyType(counts))

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def missing_bars(self) -> int:
        return sum(g.missing_bars for g in self.gaps)


@dataclass(frozen=True, slots=True)
class _Outcome:
    bars: pl.DataFrame
    rejected: pl.DataFrame  # the dropped rows, with a ``reason`` label column
    repaired: dict[str, int]


def row_checks(step_ms: int) -> tuple[tuple[str, pl.Expr], ...]:
    """The per-row checks, in order: (reason label, expression true where the row fails)."""
    o, h, low, c, v = (pl.col(n) for n in ("open", "high", "low", "close", "volume"))
    values = (*PRICE_COLUMNS, "volume")
    return (
        (REASON_NAN, pl.any_horizontal(pl.col(n).is_nan() for n in values)),
        (REASON_INF, pl.any_horizontal(pl.col(n).is_infinite() for n in values)),
        (REASON_NON_POSITIVE_PRICE, pl.any_horizontal(pl.col(n) <= 0 for n in PRICE_COLUMNS)),
        (REASON_NEGATIVE_VOLUME, v < 0),
        (REASON_HIGH_BELOW_LOW, h < low),
        (REASON_HIGH_BELOW_BODY, h < pl.max_horizontal(o, c)),
        (REASON_LOW_ABOVE_BODY, low > pl.min_horizontal(o, c)),
        (REASON_OFF_GRID, pl.col("timestamp").dt.epoch("ms") % step_ms != 0),
        (REASON_IMPLAUSIBLE_VOLUME, c * v > MAX_BAR_QUOTE_VOLUME),
    )


def clean_ohlcv(
    frame: pl.DataFrame, *, symbol: str, timeframe: str, now: datetime | None = None
) -> CleanBars:
    """Cast ``frame`` to the OHLCV schema, repair what is safe and drop the bad rows, each logged
    with its reason and counted in the result. ``now`` (UTC-aware, default: the wall clock)
    decides whether the last candle is still open. A frame that is not OHLCV at all (columns
    missing, naive or non-time timestamps, non-numeric values) is a DataValidationError."""
    outcome = _run(frame, symbol=symbol, timeframe=timeframe, now=now)
    rejected = _counts(outcome.rejected)
    for reason, count in rejected.items():
        first = outcome.rejected.filter(pl.col(_REASON) == reason)["timestamp"][0]
        _log().warning(
            "ohlcv_candles_rejected",
            symbol=symbol,
            timeframe=timeframe,
            reason=reason,
            count=count,
            first=first.isoformat() if isinstance(first, datetime) else None,
            detail=DESCRIPTIONS[reason],
        )
    gaps = _gaps_logged(outcome.bars, symbol=symbol, timeframe=timeframe)
    return CleanBars(outcome.bars, rejected, outcome.repaired, gaps)


def validate_ohlcv(
    frame: pl.DataFrame, *, symbol: str, timeframe: str, now: datetime | None = None
) -> ValidatedBars:
    """The strict mode of :func:`clean_ohlcv` for writes: the same repairs, but any row it would
    drop raises DataValidationError naming the offending rows."""
    outcome = _run(frame, symbol=symbol, timeframe=timeframe, now=now)
    _reject(outcome.rejected, symbol=symbol, timeframe=timeframe)
    gaps = _gaps_logged(outcome.bars, symbol=symbol, timeframe=timeframe)
    repaired = outcome.repaired
    return ValidatedBars(
        outcome.bars,
        gaps,
        repaired.get(REPAIR_EXACT_DUPLICATE, 0),
        bool(repaired.get(REPAIR_OPEN_CANDLE, 0)),
    )


def _run(frame: pl.DataFrame, *, symbol: str, timeframe: str, now: datetime | None) -> _Outcome:
    """The stages both modes share: cast, sort, nulls, duplicates, row checks, open candle."""
    step_ms = timeframe_ms(timeframe)
    clock = now if now is not None else datetime.now(UTC)
    if clock.tzinfo is None:
        raise ValueError(f"now={clock!r} is naive; pass a UTC-aware datetime")
    cast = _cast_to_schema(frame, symbol=symbol)
    ts = pl.col("timestamp")
    repaired = {REPAIR_OUT_OF_ORDER: int(cast.select((ts < ts.cum_max().shift(1)).sum()).item())}
    bars = cast.sort("timestamp", maintain_order=True)
    dropped: list[pl.DataFrame] = []
    any_null = pl.any_horizontal(pl.col(c).is_null() for c in OHLCV_COLUMNS)
    bars = _split(bars, any_null, pl.lit(REASON_NULL), dropped)
    unique = bars.unique(maintain_order=True)
    repaired[REPAIR_EXACT_DUPLICATE] = bars.height - unique.height
    bars = _split(unique, ts.is_duplicated(), pl.lit(REASON_CONFLICTING_DUPLICATE), dropped)
    first_failing = pl.coalesce(
        [pl.when(fails).then(pl.lit(reason)) for reason, fails in row_checks(step_ms)]
    )
    bars = _split(bars, first_failing.is_not_null(), first_failing, dropped)
    open_ms = ts.dt.epoch("ms") + step_ms > int(clock.timestamp() * 1000)
    still_open = bars.filter(open_ms)
    if still_open.height:
        repaired[REPAIR_OPEN_CANDLE] = 1
        _log().info(
            "ohlcv_open_candle_dropped",
            symbol=symbol,
            timeframe=timeframe,
            open_time=still_open["timestamp"][-1].isoformat(),
            now=clock.isoformat(),
            reason=REPAIR_OPEN_CANDLE,
            detail=DESCRIPTIONS[REPAIR_OPEN_CANDLE],
        )
        dropped.append(
            still_open.head(-1).with_columns(pl.lit(REASON_FUTURE_CANDLE).alias(_REASON))
        )
        bars = bars.filter(~open_ms)
    for reason in (REPAIR_OUT_OF_ORDER, REPAIR_EXACT_DUPLICATE):
        if repaired[reason]:
            _log().warning(
                "ohlcv_candles_repaired",
                symbol=symbol,
                timeframe=timeframe,
                reason=reason,
                count=repaired[reason],
                detail=DESCRIPTIONS[reason],
            )
    rejected = (
        pl.concat(dropped) if dropped else bars.head(0).with_columns(pl.lit("").alias(_REASON))
    )
    return _Outcome(bars, rejected, {k: v for k, v in repaired.items() if v})


def _split(
    bars: pl.DataFrame, failing: pl.Expr, reason: pl.Expr, dropped: list[pl.DataFrame]
) -> pl.DataFrame:
    """``bars`` without the rows where ``failing``; those go to ``dropped`` with their reason."""
    mask = failing.fill_null(value=False)
    bad = bars.filter(mask)
    if bad.height:
        dropped.append(bad.with_columns(reason.alias(_REASON)))
        return bars.filter(~mask)
    return bars


def _counts(rejected: pl.DataFrame) -> dict[str, int]:
    found = dict(rejected.group_by(_REASON).len().iter_rows())
    return {reason: int(found[reason]) for reason in REJECT_REASONS if reason in found}


def _gaps_logged(bars: pl.DataFrame, *, symbol: str, timeframe: str) -> tuple[Gap, ...]:
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
    return gaps


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


def _reject(offending: pl.DataFrame, *, symbol: str, timeframe: str) -> None:
    if offending.is_empty():
        return
    counts = ", ".join(f"{k}: {v}" for k, v in _counts(offending).items())
    rows = [_row_dict(r) for r in offending.head(MAX_LISTED_ROWS).iter_rows(named=True)]
    shown = "; ".join(_row_text(r) for r in rows)
    more = f" (first {MAX_LISTED_ROWS} shown)" if offending.height > MAX_LISTED_ROWS else ""
    raise DataValidationError(
        f"{symbol} {timeframe}: {offending.height} rows with bad candles ({counts}){more}: {shown}",
        rows=rows,
    )


def _row_dict(row: dict[str, Any]) -> dict[str, Any]:
    ts = row.get("timestamp")
    code = row.get(_REASON)
    return {
        **row,
        "timestamp": ts.isoformat() if isinstance(ts, datetime) else ts,
        "code": code,
        _REASON: DESCRIPTIONS.get(str(code), str(code)),
    }


def _row_text(row: dict[str, Any]) -> str:
    values = ", ".join(f"{k}={row.get(k)}" for k in OHLCV_COLUMNS[1:])
    return f"[{row.get('timestamp')} {values}: {row.get('reason')}]"
