"""The embedded default market: deterministic, regime-switching, ~450 USDT pairs.

:class:`SyntheticMarket` serves the simulation of :mod:`trading_core.market.synthetic_model`
through the :class:`~trading_core.market.source.MarketDataSource` protocol. The whole market is
simulated once per instance on first use (all coins x ``days`` of 1h bars) and cached; 4h and 1d
candles are resampled from the 1h ones. The simulated clock ends at ``end_date`` 00:00 UTC: the
last 1h candle opens one hour earlier.
"""

from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Final

import numpy as np
import polars as pl

from trading_core.config.models import SyntheticMarketSection
from trading_core.errors import ConfigError, DataSourceError
from trading_core.market.resample import resample_ohlcv
from trading_core.market.schema import (
    FUNDING_SCHEMA,
    OHLCV_SCHEMA,
    TIMESTAMP_DTYPE,
    split_symbol,
    universe_frame,
)
from trading_core.market.source import require_utc_window
from trading_core.market.synthetic_model import SPREAD_MULT, SimulatedMarket, simulate
from trading_core.market.validation import clean_ohlcv
from trading_core.types import REGIMES

SERVED_TIMEFRAMES: Final = ("1h", "4h", "1d")
_HOUR_MS: Final = 3_600_000
_SYLLABLES: Final = (
    "ka",
    "zo",
    "ri",
    "mu",
    "te",
    "xa",
    "lo",
    "vi",
    "ne",
    "qu",
    "sa",
    "do",
    "pe",
    "ry",
    "fi",
    "go",
    "ju",
    "be",
    "wa",
    "ni",
    "ox",
    "ar",
    "el",
    "um",
    "ix",
    "on",
    "ze",
    "ha",
    "ly",
    "co",
)
_RESERVED: Final = frozenset({"BTC", "ETH", "USDT", "USDC", "USD", "BUSD"})


def synthetic_bases(n_coins: int) -> list[str]:
    """Tickers of the synthetic coins: BTC, ETH, then invented, pronounceable, unique names.

    Fixed across seeds and prefix-stable (the first k names do not depend on ``n_coins``)."""
    rng = np.random.default_rng(20_240_101)
    names = ["BTC", "ETH"][:n_coins]
    seen = set(_RESERVED)
    while len(names) < n_coins:
        parts = rng.integers(0, len(_SYLLABLES), size=int(rng.integers(2, 4)))
        name = "".join(_SYLLABLES[p] for p in parts).upper()
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


class SyntheticMarket:
    """Deterministic simulated venue; see :mod:`trading_core.market.synthetic_model`."""

    name = "synthetic"

    def __init__(self, section: SyntheticMarketSection, quote: str = "USDT") -> None:
        if not quote or "/" in quote:
            raise ConfigError(f"quote {quote!r} must be a bare currency code such as 'USDT'")
        self.section = section
        self.quote = quote
        self.end = datetime.combine(section.end_date, time(0), tzinfo=UTC)
        self._bases = synthetic_bases(section.n_coins)
        self._index = {f"{b}/{quote}": i for i, b in enumerate(self._bases)}
        self._frames: dict[tuple[int, str], pl.DataFrame] = {}

    @cached_property
    def market(self) -> SimulatedMarket:
        """The whole simulated market (computed once per instance)."""
        return simulate(
            n_coins=self.section.n_coins,
            n_bars=self.section.days * 24,
            end_ms=int(self.end.timestamp() * 1000),
            seed=self.section.seed,
            structured=self.section.mode == "structured",
            strength=self.section.structure_strength,
        )

    def list_symbols(self) -> list[str]:
        return list(self._index)

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, *, start: datetime, end: datetime
    ) -> pl.DataFrame:
        require_utc_window(start, end)
        if timeframe not in SERVED_TIMEFRAMES:
            raise DataSourceError(
                f"synthetic market serves timeframes {list(SERVED_TIMEFRAMES)}, not {timeframe!r}"
            )
        frame = self._frame(self._coin(symbol), timeframe)
        return frame.filter(pl.col("timestamp").is_between(start, end, closed="left"))

    def true_regimes(self, symbol: str) -> pl.DataFrame:
        """The regime that generated each 1h bar: ``timestamp, regime`` (Regime values)."""
        i = self._coin(symbol)
        m = self.market
        first = int(m.first_bar[i])
        labels = np.array([r.value for r in REGIMES])[m.regimes[i, first:]]
        return pl.DataFrame(
            {"timestamp": m.timestamps_ms[first:], "regime": labels},
            schema={"timestamp": pl.Int64(), "regime": pl.String()},
        ).with_columns(pl.col("timestamp").cast(TIMESTAMP_DTYPE))

    def funding_rates(self, symbol: str, *, start: datetime, end: datetime) -> pl.DataFrame:
        require_utc_window(start, end)
        i = self._coin(symbol)
        m = self.market
        listed_ms = int(m.timestamps_ms[m.first_bar[i]])
        keep = m.funding_ms >= listed_ms
        frame = pl.DataFrame(
            {"timestamp": m.funding_ms[keep], "funding_rate": m.funding_rate[i, keep]},
            schema={"timestamp": pl.Int64(), "funding_rate": pl.Float64()},
        ).with_columns(pl.col("timestamp").cast(TIMESTAMP_DTYPE))
        window = frame.filter(pl.col("timestamp").is_between(start, end, closed="left"))
        return window.cast(pl.Schema(FUNDING_SCHEMA))

    def universe_snapshot(self, as_of: datetime) -> pl.DataFrame:
        """Coins listed with a closed bar by ``as_of``: trailing-24h quote volume, the spread
        model of the coin's regime at its last closed bar, listing date and age."""
        require_utc_window(as_of - timedelta(hours=1), as_of)
        m = self.market
        as_of_ms = int(as_of.timestamp() * 1000)
        closed = int(np.searchsorted(m.timestamps_ms + _HOUR_MS, as_of_ms, side="right"))
        rows: list[dict[str, object]] = []
        for i, base in enumerate(self._bases):
            first = int(m.first_bar[i])
            if closed <= first:
                continue
            window = slice(max(first, closed - 24), closed)
            window_open_ms = m.timestamps_ms[window]
            in_day = window_open_ms >= as_of_ms - 24 * _HOUR_MS
            quote_volume = (m.close[i, window] * m.volume[i, window])[in_day].sum()
            listing = self._listing_date(i)
            rows.append(
                {
                    "symbol": f"{base}/{self.quote}",
                    "base": base,
                    "quote": self.quote,
                    "last_price": float(m.close[i, closed - 1]),
                    "daily_volume_usd": float(quote_volume),
                    "spread_bps": float(
                        m.params.base_spread_bps[i] * SPREAD_MULT[m.regimes[i, closed - 1]]
                    ),
                    "listing_date": listing,
                    "age_days": (as_of.date() - listing).days,
                }
            )
        return universe_frame(rows)

    def _listing_date(self, i: int) -> date:
        return self.section.end_date - timedelta(days=int(self.market.params.listing_age_days[i]))

    def _coin(self, symbol: str) -> int:
        split_symbol(symbol)
        try:
            return self._index[symbol]
        except KeyError:
            raise DataSourceError(
                f"symbol {symbol!r} is not in the synthetic market ({len(self._index)} "
                f"{self.quote} pairs, e.g. {list(self._index)[:3]})"
            ) from None

    def _frame(self, i: int, timeframe: str) -> pl.DataFrame:
        key = (i, timeframe)
        if key not in self._frames:
            hourly = self._frames.get((i, "1h"))
            if hourly is None:
                hourly = self._hourly(i)
                self._frames[(i, "1h")] = hourly
            if timeframe != "1h":
                self._frames[key] = resample_ohlcv(hourly, "1h", timeframe)
        return self._frames[key]

    def _hourly(self, i: int) -> pl.DataFrame:
        m = self.market
        first = int(m.first_bar[i])
        raw = pl.DataFrame(
            {
                "timestamp": m.timestamps_ms[first:],
                "open": m.open[i, first:],
                "high": m.high[i, first:],
                "low": m.low[i, first:],
                "close": m.close[i, first:],
                "volume": m.volume[i, first:],
            }
        )
        symbol = f"{self._bases[i]}/{self.quote}"
        cleaned = clean_ohlcv(raw, symbol=symbol, timeframe="1h", now=self.end)
        return cleaned.frame.cast(pl.Schema(OHLCV_SCHEMA))
