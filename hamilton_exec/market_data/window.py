"""Per-coin trailing windows of closed candles, kept as numpy ring buffers.

Hamilton appends one closed bar per coin per tick and reads the last ``n`` bars of many coins at
once; numpy buffers make both cheap (an append is a few array writes, a read a view), where a
polars frame per coin would copy on every append. ``bars_seen`` counts every bar ever appended,
so a bar's position in the coin's history (what the warm-up rules of the features, engines and
regime detector count) survives the window's trimming.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from hamilton_exec.market_data.market_books import BookQuote
from trading_core.market.schema import OHLCV_COLUMNS, OHLCV_SCHEMA, TIMESTAMP

FloatArray = npt.NDArray[np.float64]
VALUE_COLUMNS: Final[tuple[str, ...]] = OHLCV_COLUMNS[1:]


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed candle: ``open_ms`` is its open time (epoch ms, UTC)."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class CoinWindow:
    """The last ``capacity`` candles of one coin, oldest first, strictly increasing in time."""

    def __init__(self, symbol: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"window capacity {capacity!r} must be >= 1")
        self.symbol = symbol
        self.capacity = capacity
        self._times = np.zeros(2 * capacity, dtype=np.int64)
        self._values = np.zeros((len(VALUE_COLUMNS), 2 * capacity), dtype=np.float64)
        self._start = 0
        self._end = 0
        self.bars_seen = 0

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def last_open_ms(self) -> int | None:
        return int(self._times[self._end - 1]) if len(self) else None

    def append(self, candle: Candle) -> None:
        """Add the next closed candle; an older or repeated open time is refused."""
        last = self.last_open_ms
        if last is not None and candle.open_ms <= last:
            raise ValueError(
                f"{self.symbol}: candle at {candle.open_ms} is not after the last one at {last}"
            )
        if self._end == self._times.size:
            self._compact()
        self._times[self._end] = candle.open_ms
        self._values[:, self._end] = (
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
        )
        self._end += 1
        self.bars_seen += 1
        if len(self) > self.capacity:
            self._start += 1

    def extend(self, bars: pl.DataFrame) -> None:
        """Append every row of an OHLCV frame (sorted, newer than the window)."""
        for candle in candles_of(bars):
            self.append(candle)

    def times(self, last: int | None = None) -> npt.NDArray[np.int64]:
        start = self._start if last is None else max(self._start, self._end - last)
        return self._times[start : self._end]

    def values(self, last: int | None = None) -> FloatArray:
        """(5, n) open, high, low, close, volume of the last ``last`` bars (a view)."""
        start = self._start if last is None else max(self._start, self._end - last)
        return self._values[:, start : self._end]

    def close_at(self, back: int) -> float:
        """The close ``back`` bars before the newest (0 = newest)."""
        if not 0 <= back < len(self):
            raise IndexError(f"{self.symbol}: window holds {len(self)} bars, asked {back} back")
        return float(self._values[3, self._end - 1 - back])

    def frame(self, last: int | None = None) -> pl.DataFrame:
        """The last ``last`` bars as an OHLCV frame (the market schema)."""
        values = self.values(last)
        data = {TIMESTAMP: self.times(last)} | {
            name: values[i] for i, name in enumerate(VALUE_COLUMNS)
        }
        return pl.DataFrame(data).with_columns(pl.col(TIMESTAMP).cast(OHLCV_SCHEMA[TIMESTAMP]))

    def _compact(self) -> None:
        size = len(self)
        self._times[:size] = self._times[self._start : self._end]
        self._values[:, :size] = self._values[:, self._start : self._end]
        self._start, self._end = 0, size


def candles_of(bars: pl.DataFrame) -> list[Candle]:
    """The rows of an OHLCV frame as :class:`Candle` records."""
    missing = [c for c in OHLCV_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack columns {missing}; expected the OHLCV schema")
    times = bars[TIMESTAMP].dt.epoch("ms").to_numpy()
    values = bars.select(VALUE_COLUMNS).to_numpy()
    return [Candle(int(t), *map(float, row)) for t, row in zip(times, values, strict=True)]


def long_frame(windows: Sequence[CoinWindow], last: int) -> tuple[pl.DataFrame, np.ndarray]:
    """The last ``last`` bars of every window stacked in one frame with a ``coin`` column (the
    window's position in ``windows``), each coin a contiguous block; and each row's position in
    its coin's history (``bars_seen``-based)."""
    times, values, coin, position = [], [], [], []
    for i, window in enumerate(windows):
        t = window.times(last)
        times.append(t)
        values.append(window.values(last))
        coin.append(np.full(t.size, i, dtype=np.int32))
        position.append(np.arange(window.bars_seen - t.size, window.bars_seen, dtype=np.int64))
    stacked = np.concatenate(values, axis=1) if values else np.zeros((len(VALUE_COLUMNS), 0))
    data: dict[str, np.ndarray] = {
        TIMESTAMP: np.concatenate(times) if times else np.zeros(0, dtype=np.int64),
        **{name: stacked[i] for i, name in enumerate(VALUE_COLUMNS)},
        COIN_COLUMN: np.concatenate(coin) if coin else np.zeros(0, dtype=np.int32),
    }
    frame = pl.DataFrame(data).with_columns(pl.col(TIMESTAMP).cast(OHLCV_SCHEMA[TIMESTAMP]))
    return frame, np.concatenate(position) if position else np.zeros(0, dtype=np.int64)


COIN_COLUMN: Final = "coin"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))


@dataclass(frozen=True)
class Tick:
    """The bar opened at ``open_ms`` has closed; ``candles`` holds each coin's closed candle
    (a coin absent from it has no fresh bar); ``now`` is the clock at the tick."""

    open_ms: int
    candles: Mapping[str, Candle]
    now: datetime
    # the live top of book per coin at the tick (None: the feed carries no books)
    books: Mapping[str, BookQuote] | None = None
