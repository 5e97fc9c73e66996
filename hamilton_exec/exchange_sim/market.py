"""Deterministic synthetic market data: the mid price of any symbol at any millisecond, klines,
24h statistics and funding rates, all derived from ``(seed, symbol, time)`` alone.

The log-price is a sum of "value noise" layers: layer ``k`` draws a hashed uniform value on a
grid of ``2**k`` seconds and interpolates linearly between grid points; the layer amplitudes grow
like ``sqrt(2**k)`` so the path moves like a random walk over scales from one second to about
three months. No state is kept: ``mid(t)`` for any ``t`` (past, now, future) is a pure function,
so a bar asked for twice (or a forming bar asked for again once it closed) is consistent. The path
is piecewise linear between whole seconds, so the true high/low of a bar lies on a whole second.

Prices can be pinned (:meth:`SyntheticMarket.pin`): from the pin time on the mid is the pinned
value, which is how tests move the market across a resting order deterministically.
"""

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt

MINUTE_MS: Final = 60_000
INTERVAL_MS: Final[dict[str, int]] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
    "3d": 3 * 1440 * MINUTE_MS,
    "1w": 7 * 1440 * MINUTE_MS,
}
_WEEK_ANCHOR_MS: Final = 4 * 86_400_000  # Binance weeks open on Monday; 1970-01-05 was one
FUNDING_INTERVAL_MS: Final = 8 * 3_600_000
_LAYERS: Final = 23  # 1 s .. 2**22 s (~49 days)
_SAMPLES_PER_BAR: Final = 240
_MASK64: Final = (1 << 64) - 1

Kline = list[int | str]  # Binance kline row: times as ints, prices and volumes as strings
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Filters:
    """One market's trading rules (Binance ``exchangeInfo`` filters)."""

    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    min_price: Decimal
    max_price: Decimal


@dataclass(frozen=True)
class SymbolSpec:
    """A listed pair: spot ``BASEQUOTE`` and the USD-M perpetual ``BASEQUOTE`` (quote-settled)."""

    base: str
    quote: str
    price: float  # the level the synthetic walk wanders around
    spot: Filters
    futures: Filters
    quote_volume_per_minute: float = 50_000.0

    @property
    def id(self) -> str:
        return f"{self.base}{self.quote}"


_KNOWN_PRICES: Final[dict[str, float]] = {
    "BTC": 60_000.0,
    "ETH": 3_000.0,
    "BNB": 600.0,
    "SOL": 150.0,
    "XRP": 0.6,
    "DOGE": 0.15,
    "ADA": 0.45,
}


def _pow10(exponent: int) -> Decimal:
    return Decimal(1).scaleb(exponent)


def default_spec(symbol: str, price: float | None = None) -> SymbolSpec:
    """A plausible spec for ``"BASE/QUOTE"``: tick and step sizes scale with the price level
    (BTC at 60k: spot tick 0.01 / step 0.00001 / min notional 5; perp tick 0.1 / step 0.001 /
    min notional 100, as on Binance)."""
    base, _, quote = symbol.partition("/")
    if not base or not quote or ":" in quote:
        raise ValueError(f"symbol {symbol!r} must look like 'BTC/USDT'")
    if price is None:
        digest = hashlib.sha256(base.encode()).digest()
        price = _KNOWN_PRICES.get(base, 10 ** (digest[0] / 255 * 4 - 2))
    exponent = math.floor(math.log10(price))
    step_exp = min(0, -exponent - 1)
    tick_exp = max(min(exponent - 4, -2), -8)  # 0.01 from ~100 up, ~5 significant digits below
    fut_tick_exp = max(tick_exp, exponent - 5)
    spot = Filters(
        tick_size=_pow10(tick_exp),
        step_size=_pow10(max(step_exp, -8)),
        min_qty=_pow10(max(step_exp, -8)),
        max_qty=Decimal(max(9_000, round(90_000_000 / price))),
        market_max_qty=Decimal(max(1, round(2_000_000 / price))),
        min_notional=Decimal(5),
        min_price=_pow10(tick_exp),
        max_price=Decimal(1_000_000) * _pow10(max(exponent - 4, 0)),
    )
    fut_step = _pow10(min(0, step_exp + 2))
    futures = replace(
        spot,
        tick_size=_pow10(fut_tick_exp),
        min_price=_pow10(fut_tick_exp),
        step_size=fut_step,
        min_qty=fut_step,
        max_qty=Decimal(max(10, round(5_000_000 / price))),
        market_max_qty=Decimal(max(10, round(1_000_000 / price))),
        min_notional=Decimal(100)
        if base == "BTC"
        else Decimal(20)
        if base == "ETH"
        else Decimal(5),
    )
    return SymbolSpec(base=base, quote=quote, price=price, spot=spot, futures=futures)


def _splitmix(keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    z = keys + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _unit(keys: npt.NDArray[np.uint64]) -> FloatArray:
    """Hashed uniform values in [0, 1)."""
    return (_splitmix(keys) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _stream(seed: int, *parts: object) -> int:
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@dataclass
class SyntheticMarket:
    """Mid prices and market statistics for ``specs``; pure functions of (seed, symbol, time)."""

    specs: Sequence[SymbolSpec]
    seed: int = 0
    daily_vol: float = 0.03
    funding_rate: float = 0.0001
    _pins: dict[str, list[tuple[int, float]]] = field(default_factory=dict, init=False)
    _by_id: dict[str, SymbolSpec] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._by_id = {s.id: s for s in self.specs}
        # value noise of unit variance per layer yields increments of about 3.5*c*h over h
        # seconds (measured), so c sets the daily volatility
        self._c = self.daily_vol**2 / (3.5 * 86_400)

    def spec(self, symbol_id: str) -> SymbolSpec | None:
        return self._by_id.get(symbol_id)

    def pin(self, symbol_id: str, price: float | None, since_ms: int) -> None:
        """From ``since_ms`` on the mid is ``price`` (None: back to the synthetic walk)."""
        pins = [p for p in self._pins.get(symbol_id, []) if p[0] < since_ms]
        pins.append((since_ms, math.nan if price is None else float(price)))
        self._pins[symbol_id] = pins

    def mids(self, symbol_id: str, times_ms: IntArray) -> FloatArray:
        spec = self._by_id[symbol_id]
        t = np.asarray(times_ms, dtype=np.int64)
        log_move = np.zeros(t.shape, dtype=np.float64)
        for k in range(_LAYERS):
            span = np.int64(1000 << k)
            grid = t // span
            frac = (t - grid * span).astype(np.float64) / float(span)
            base_key = np.uint64(_stream(self.seed, symbol_id, k))
            g = grid.astype(np.uint64)
            v0 = _unit(g + base_key)
            v1 = _unit(g + np.uint64(1) + base_key)
            noise = (v0 + (v1 - v0) * frac - 0.5) * math.sqrt(12.0)
            log_move += math.sqrt(self._c * (1 << k)) * noise
        out: FloatArray = spec.price * np.exp(log_move)
        for since, price in self._pins.get(symbol_id, []):
            if not math.isnan(price):
                out = np.where(t >= since, price, out)
            else:
                out = np.where(t >= since, spec.price * np.exp(log_move), out)
        return out

    def mid(self, symbol_id: str, time_ms: int) -> float:
        return float(self.mids(symbol_id, np.array([time_ms], dtype=np.int64))[0])

    # --- bars -----------------------------------------------------------------------------

    @staticmethod
    def bar_open(interval: str, time_ms: int) -> int:
        size = INTERVAL_MS[interval]
        anchor = _WEEK_ANCHOR_MS if interval == "1w" else 0
        return (time_ms - anchor) // size * size + anchor

    def klines(
        self,
        symbol_id: str,
        interval: str,
        *,
        now_ms: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
        tick: Decimal | None = None,
    ) -> list[Kline]:
        """Binance kline rows (strings for prices and volumes, prices on ``tick``, by default the
        spot tick); the bar holding ``now_ms`` is returned partial, bars after it never are."""
        size = INTERVAL_MS[interval]
        last_open = self.bar_open(interval, now_ms)
        if end_ms is not None:
            last_open = min(last_open, self.bar_open(interval, end_ms))
        if start_ms is not None:
            first = self.bar_open(interval, start_ms)
            first = first if first >= start_ms else first + size
            opens = list(range(first, last_open + 1, size))[:limit]
        else:
            opens = list(range(last_open - (limit - 1) * size, last_open + 1, size))
        if not opens:
            return []
        closed = [o for o in opens if o + size - 1 <= now_ms]
        tick = tick or self._by_id[symbol_id].spot.tick_size
        rows: list[Kline] = []
        chunk = max(1, 200_000 // (_SAMPLES_PER_BAR + 1))
        for i in range(0, len(closed), chunk):
            rows.extend(self._bar_rows(symbol_id, interval, closed[i : i + chunk], None, tick))
        if len(closed) < len(opens):
            rows.append(self._bar_rows(symbol_id, interval, [opens[-1]], now_ms, tick)[0])
        return rows

    def _bar_rows(
        self, symbol_id: str, interval: str, opens: list[int], now_ms: int | None, tick: Decimal
    ) -> list[Kline]:
        """Rows for bars opening at ``opens``: closed bars (``now_ms`` None) or the one bar still
        forming at ``now_ms`` (sampled up to then, volume pro rata)."""
        spec = self._by_id[symbol_id]
        size = INTERVAL_MS[interval]
        step = max(1000, size // _SAMPLES_PER_BAR)
        last = size - 1 if now_ms is None else now_ms - opens[0]
        offsets = np.append(np.arange(0, last + 1, step, dtype=np.int64), np.int64(last))
        start = np.array(opens, dtype=np.int64)
        prices = self.mids(symbol_id, start[:, None] + offsets[None, :])
        keys = np.array([_stream(self.seed, symbol_id, interval, o) for o in opens], np.uint64)
        units = _unit(keys)
        elapsed = (last + 1) / size
        rows: list[Kline] = []
        for i, open_ms in enumerate(opens):
            row = prices[i]
            unit = float(units[i])
            rows.append(kline_row(spec, tick, int(open_ms), size, row, unit, elapsed))
        return rows

    def stats_24h(self, symbol_id: str, now_ms: int) -> dict[str, float]:
        """Open/high/low/last and volumes over the 24 hours before ``now_ms``."""
        times = np.arange(now_ms - 86_400_000, now_ms + 1, MINUTE_MS, dtype=np.int64)
        times = np.append(times, np.int64(now_ms))
        prices = self.mids(symbol_id, times)
        spec = self._by_id[symbol_id]
        quote_volume = spec.quote_volume_per_minute * 1440
        return {
            "open": float(prices[0]),
            "high": float(prices.max()),
            "low": float(prices.min()),
            "last": float(prices[-1]),
            "quote_volume": quote_volume,
            "volume": quote_volume / float(prices.mean()),
            "vwap": float(prices.mean()),
        }

    # --- funding --------------------------------------------------------------------------

    def funding_rate_at(self, symbol_id: str, funding_time_ms: int) -> float:
        key = np.array([_stream(self.seed, symbol_id, "funding", funding_time_ms)], np.uint64)
        return round(self.funding_rate + (float(_unit(key)[0]) - 0.5) * 2 * self.funding_rate, 8)

    def funding_history(
        self, symbol_id: str, *, now_ms: int, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[tuple[int, float, float]]:
        """(funding time, rate, mark price) of settlements up to now, Binance's selection rules:
        from ``start_ms`` on, else the latest ``limit`` before ``end_ms``."""
        last = min(now_ms, end_ms if end_ms is not None else now_ms)
        last = last // FUNDING_INTERVAL_MS * FUNDING_INTERVAL_MS
        if start_ms is not None:
            first = -(-start_ms // FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS
            times = list(range(first, last + 1, FUNDING_INTERVAL_MS))[:limit]
        else:
            times = list(
                range(last - (limit - 1) * FUNDING_INTERVAL_MS, last + 1, FUNDING_INTERVAL_MS)
            )
        return [(t, self.funding_rate_at(symbol_id, t), self.mid(symbol_id, t)) for t in times]


def kline_row(
    spec: "SymbolSpec",
    tick: Decimal,
    open_ms: int,
    size: int,
    prices: FloatArray,
    unit: float,
    elapsed: float,
) -> Kline:
    """Binance's kline row of one bar from its sampled mids: open/high/low/close on the tick
    grid, a hashed volume (``unit`` in [0, 1)) for the ``elapsed`` share of the bar, the taker
    share, a trade count. The REST klines and the websocket kline stream both build rows here."""
    quote_volume = spec.quote_volume_per_minute * size / MINUTE_MS * (0.5 + unit) * elapsed
    volume = quote_volume / float(prices.mean())
    taker = 0.4 + 0.2 * unit
    return [
        open_ms,
        _fmt(prices[0], tick),
        _fmt(prices.max(), tick),
        _fmt(prices.min(), tick),
        _fmt(prices[-1], tick),
        f"{volume:.8f}",
        open_ms + size - 1,
        f"{quote_volume:.8f}",
        max(1, int(quote_volume / 500)),
        f"{volume * taker:.8f}",
        f"{quote_volume * taker:.8f}",
        "0",
    ]


def _fmt(value: float, tick: Decimal) -> str:
    """``value`` rounded to the tick, with 8 decimals (Binance spot prints prices that way)."""
    rounded = (Decimal(repr(float(value))) / tick).to_integral_value() * tick
    return f"{rounded:.8f}"
