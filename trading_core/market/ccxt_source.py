"""Market data from a real venue through ccxt (sync client, ccxt's own rate limiter on).

Every call goes through :func:`trading_core.market.exchange_calls.call_with_retries`, the
project's one ccxt call-and-retry helper: ccxt's temporary errors (the ``OperationFailed`` /
``NetworkError`` family) are retried with its backoff and become
:class:`~trading_core.errors.ExchangeTemporaryError` after ``max_retries``; every other ccxt
error is :class:`~trading_core.errors.ExchangePermanentError` at once, with no retry.
API keys come from :class:`~trading_core.config.models.ExchangeSection` and are never logged.
"""

import importlib
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, TypeVar

import ccxt
import polars as pl

from trading_core.config.models import ExchangeSection
from trading_core.errors import DataSourceError
from trading_core.market.exchange_calls import call_with_retries
from trading_core.market.schema import (
    FUNDING_SCHEMA,
    OHLCV_COLUMNS,
    empty_funding,
    empty_ohlcv,
    split_symbol,
    universe_frame,
)
from trading_core.market.source import require_utc_window
from trading_core.market.validation import clean_ohlcv
from trading_core.observability.logging import get_logger
from trading_core.types import timeframe_ms

PAGE_LIMIT: Final = 1000
_FUNDING_STEP_MS: Final = 8 * 3_600_000
_RAW_OHLCV_SCHEMA: Final = {"timestamp": pl.Int64(), **{c: pl.Float64() for c in OHLCV_COLUMNS[1:]}}


def _log() -> Any:
    """This module's logger, resolved per call: configure_logging() may run after import."""
    return get_logger(__name__)


T = TypeVar("T")


def build_ccxt_client(
    exchange: ExchangeSection,
    *,
    market_types: Sequence[str] = ("spot", "linear"),
    streaming: bool = False,
) -> Any:
    """A ccxt exchange object for ``exchange.name`` with the rate limiter on: the sync REST
    client, or with ``streaming`` the asyncio ccxt.pro client (websockets and async REST).

    ``market_types`` limits what ``load_markets`` asks for (Binance: spot and USD-M perps, the
    latter for funding rates). Currencies and margin pairs are not fetched: market data does
    not need them and on Binance they are signed, private calls."""
    family: Any = ccxt
    if streaming:  # ccxt.pro (websockets) is imported only where a streaming feed runs
        family = importlib.import_module("ccxt.pro")
    factory = getattr(family, exchange.name, None)
    if factory is None or exchange.name not in family.exchanges:
        kind = "ccxt.pro (websocket)" if streaming else "ccxt"
        raise DataSourceError(
            f"exchange {exchange.name!r} is not a {kind} exchange id (e.g. 'binance')"
        )
    params: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": exchange.timeout_ms,
        "options": {
            "fetchMarkets": {"types": list(market_types)},
            "defaultType": "spot",
            "fetchCurrencies": False,
            "fetchMargins": False,
        },
    }
    if exchange.api_key is not None and exchange.api_secret is not None:
        params["apiKey"] = exchange.api_key.get_secret_value()
        params["secret"] = exchange.api_secret.get_secret_value()
    params["options"]["recvWindow"] = exchange.recv_window_ms
    client = factory(params)
    if exchange.sandbox:
        client.set_sandbox_mode(True)
    if exchange.base_url is not None:
        point_at(client, exchange.base_url)
    return client


def point_at(client: Any, base_url: str) -> None:
    """Rewrite every REST URL of ``client`` to ``base_url`` (keeping each path), e.g. the local
    exchange simulator: ``https://fapi.binance.com/fapi/v1`` -> ``http://127.0.0.1:8765/fapi/v1``.

    A ccxt.pro client's websocket URLs (``urls['api']['ws']``) go to the same origin as
    ``ws://``, a stream host's name becoming the first path segment, the simulator's layout:
    ``wss://stream.binance.com:9443/ws`` -> ``ws://127.0.0.1:8765/stream/ws``,
    ``wss://fstream.binance.com/ws`` -> ``ws://127.0.0.1:8765/fstream/ws``,
    ``wss://ws-api.binance.com:443/ws-api/v3`` -> ``ws://127.0.0.1:8765/ws-api/v3``."""
    origin = base_url.rstrip("/")
    if not re.match(r"^https?://[^/]+$", origin):
        raise DataSourceError(
            f"data.exchange.base_url {base_url!r} must be an origin like http://127.0.0.1:8765"
        )
    ws_origin = re.sub(r"^http", "ws", origin)

    def ws_url(url: Any) -> Any:
        if isinstance(url, dict):
            return {key: ws_url(value) for key, value in url.items()}
        found = re.match(r"^wss?://([^/.:]+)[^/]*(/.*)?$", url) if isinstance(url, str) else None
        if found is None:
            return url
        label, path = found.group(1), found.group(2) or ""
        return ws_origin + (f"/{label}" if label.endswith("stream") else "") + path

    client.urls["api"] = {
        key: re.sub(r"^https?://[^/]+", origin, url) if isinstance(url, str) else url
        for key, url in client.urls["api"].items()
    }
    if isinstance(client.urls["api"].get("ws"), dict):
        client.urls["api"]["ws"] = ws_url(client.urls["api"]["ws"])
    by_url = getattr(client, "get_exceptions_by_url", None)
    if callable(by_url):
        # ccxt's binance picks its per-market error table (USD-M's -2019 margin, -2022
        # reduce-only, -4116 duplicate id, ...) by the venue's HOST; on a rewritten origin it
        # would fall back to plain ExchangeError. Pick the table by the path instead.
        def exceptions_by_path(url: str | None, exact_or_broad: str) -> Any:
            if url is not None and url.startswith(origin + "/"):
                path = url[len(origin) :]
                for prefix, market_type in _PATH_MARKET_TYPES:
                    if path.startswith(prefix):
                        table = client.exceptions.get(market_type) or {}
                        return table.get(exact_or_broad) or {}
            return by_url(url, exact_or_broad)

        client.get_exceptions_by_url = exceptions_by_path


_PATH_MARKET_TYPES: Final = (
    ("/fapi/", "linear"),
    ("/dapi/", "inverse"),
    ("/eapi/", "option"),
    ("/papi/", "portfolioMargin"),
    ("/api/", "spot"),
    ("/sapi/", "spot"),
)


class CcxtSource:
    """:class:`~trading_core.market.source.MarketDataSource` over a ccxt exchange."""

    def __init__(
        self,
        exchange: ExchangeSection,
        *,
        client: Any | None = None,
        quote: str = "USDT",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.exchange = exchange
        self.client = (
            client
            if client is not None
            else build_ccxt_client(exchange, market_types=exchange.market_types)
        )
        self.name = f"ccxt:{exchange.name}"
        self.quote = quote
        self._sleep = sleep
        self._clock = clock
        self._listing_dates: dict[str, date] = {}

    # --- protocol -------------------------------------------------------------------------

    def list_symbols(self) -> list[str]:
        return sorted(m["symbol"] for m in self._spot_markets())

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, *, start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Paginated ``since``/``limit`` requests until ``end``, through
        :func:`~trading_core.market.validation.clean_ohlcv` (bad candles dropped and logged)."""
        require_utc_window(start, end)
        split_symbol(symbol)
        step_ms = timeframe_ms(timeframe)
        start_ms, end_ms = _ms(start), _ms(end)
        rows: list[list[Any]] = []
        since = start_ms
        while since < end_ms:
            page = self._call(
                "fetch_ohlcv",
                self.client.fetch_ohlcv,
                symbol,
                timeframe,
                since=since,
                limit=PAGE_LIMIT,
                params={"until": end_ms - 1},
            )
            if not page:
                break
            rows.extend(page)
            newest = int(page[-1][0])
            if newest < since:
                break
            since = newest + step_ms
        if not rows:
            return empty_ohlcv()
        raw = pl.DataFrame(
            [r[:6] for r in rows], schema=_RAW_OHLCV_SCHEMA, orient="row", strict=False
        )
        window = raw.filter(pl.col("timestamp").is_between(start_ms, end_ms, closed="left"))
        return clean_ohlcv(window, symbol=symbol, timeframe=timeframe, now=self._clock()).frame

    def universe_snapshot(
        self, as_of: datetime, *, symbols: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """Current tickers (24h quote volume, top-of-book spread) of the spot ``quote`` pairs.

        A live venue only knows *now*: ``as_of`` dates the listing ages. Listing date: the
        market's own (``created``) where ccxt has it, else the first daily candle (cached)."""
        wanted = set(symbols) if symbols is not None else None
        markets = [m for m in self._spot_markets() if wanted is None or m["symbol"] in wanted]
        tickers: dict[str, Any] = self._call("fetch_tickers", self.client.fetch_tickers)
        rows: list[dict[str, object]] = []
        for market in markets:
            ticker = tickers.get(market["symbol"])
            if ticker is None:
                continue
            listing = self._listing_date(market)
            rows.append(
                {
                    "symbol": market["symbol"],
                    "base": market["base"],
                    "quote": market["quote"],
                    "last_price": _num(ticker.get("last")),
                    "daily_volume_usd": _num(ticker.get("quoteVolume")),
                    "spread_bps": top_of_book_spread_bps(ticker.get("bid"), ticker.get("ask")),
                    "listing_date": listing,
                    "age_days": (as_of.date() - listing).days,
                }
            )
        return universe_frame(rows)

    def funding_rates(self, symbol: str, *, start: datetime, end: datetime) -> pl.DataFrame:
        """Funding history of the symbol's USD-margined perpetual (``BASE/QUOTE:QUOTE``);
        empty when the venue has no such perpetual or no funding history endpoint."""
        require_utc_window(start, end)
        base, quote = split_symbol(symbol)
        perp = f"{base}/{quote}:{quote}"
        markets = self._call("load_markets", self.client.load_markets)
        if perp not in markets or not self.client.has.get("fetchFundingRateHistory"):
            return empty_funding()
        start_ms, end_ms = _ms(start), _ms(end)
        entries: list[dict[str, Any]] = []
        since = start_ms
        while since < end_ms:
            page = self._call(
                "fetch_funding_rate_history",
                self.client.fetch_funding_rate_history,
                perp,
                since=since,
                limit=PAGE_LIMIT,
                params={"until": end_ms - 1},
            )
            if not page:
                break
            entries.extend(page)
            newest = int(page[-1]["timestamp"])
            if newest < since:
                break
            since = newest + 1
        usable = [e for e in entries if e.get("fundingRate") is not None and e.get("timestamp")]
        if len(usable) < len(entries):
            _log().warning(
                "funding_entries_dropped",
                symbol=perp,
                count=len(entries) - len(usable),
                reason="entry without a timestamp or a funding rate",
            )
        frame = pl.DataFrame(
            {
                "timestamp": [int(e["timestamp"]) for e in usable],
                "funding_rate": [float(e["fundingRate"]) for e in usable],
            },
            schema={"timestamp": pl.Int64(), "funding_rate": pl.Float64()},
        )
        frame = frame.filter(pl.col("timestamp").is_between(start_ms, end_ms, closed="left"))
        return (
            frame.unique("timestamp")
            .sort("timestamp")
            .with_columns(pl.col("timestamp").cast(FUNDING_SCHEMA["timestamp"]))
        )

    # --- helpers --------------------------------------------------------------------------

    def _spot_markets(self) -> list[dict[str, Any]]:
        markets: dict[str, dict[str, Any]] = self._call("load_markets", self.client.load_markets)
        return [
            m
            for m in markets.values()
            if m.get("spot") and m.get("quote") == self.quote and m.get("active") is not False
        ]

    def _listing_date(self, market: dict[str, Any]) -> date:
        symbol = market["symbol"]
        if symbol in self._listing_dates:
            return self._listing_dates[symbol]
        created = market.get("created")
        if created is None:
            first = self._call(
                "fetch_ohlcv", self.client.fetch_ohlcv, symbol, "1d", since=0, limit=1
            )
            if not first:
                raise DataSourceError(
                    f"{symbol}: the exchange returned no candle to date its listing"
                )
            created = first[0][0]
        listing = datetime.fromtimestamp(int(created) / 1000, tz=UTC).date()
        self._listing_dates[symbol] = listing
        return listing

    def _call(self, operation: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with retries on ccxt's temporary errors only."""
        return call_with_retries(
            operation, lambda: fn(*args, **kwargs), exchange=self.exchange, sleep=self._sleep
        )


def top_of_book_spread_bps(bid: object, ask: object) -> float | None:
    """(ask - bid) / mid in basis points; None when either side is missing or not positive."""
    bid_px, ask_px = _num(bid), _num(ask)
    if bid_px is None or ask_px is None or bid_px <= 0 or ask_px < bid_px:
        return None
    return (ask_px - bid_px) / ((ask_px + bid_px) / 2.0) * 10_000.0


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float | str) and value != "" else None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
