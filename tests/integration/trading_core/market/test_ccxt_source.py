"""CcxtSource with the REAL ccxt binance client against a local HTTP server on 127.0.0.1 that
replays real Binance REST payloads (ccxt's static fixtures; klines and funding rates built from
the real parquet files) and injects 429 / 5xx / slow responses / Binance error codes.
Requests are counted on the server side."""

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import polars as pl
import pytest
import structlog
from pydantic import SecretStr

from tests.unit.market_fixtures import (
    REAL_DATA,
    fresh_structlog,  # noqa: F401  (autouse)
    require_real_data,
)
from trading_core.config.models import ExchangeSection
from trading_core.errors import ExchangePermanentError, ExchangeTemporaryError
from trading_core.market import ccxt_source
from trading_core.market.ccxt_source import CcxtSource, build_ccxt_client, top_of_book_spread_bps
from trading_core.market.resample import resample_ohlcv
from trading_core.market.schema import OHLCV_SCHEMA

FIXTURE = REAL_DATA / "other" / "ccxt_binance_static_marketdata_responses.json"
FUNDING_FILE = REAL_DATA / "other" / "binance-futures_XRP_USDT_USDT-8h-funding_rate.parquet"
SPOT = {
    "BTCUSDT": ("BTC", "USDT"),
    "ETHUSDT": ("ETH", "USDT"),
    "XRPUSDT": ("XRP", "USDT"),
    "ETHBTC": ("ETH", "BTC"),
}
CLOCK = datetime(2021, 7, 18, tzinfo=UTC)  # "now" for the replayed 2021 candles
XRP_PERP_ONBOARD_MS = 1_578_009_600_000  # 2020-01-03


def _klines(symbol: str) -> pl.DataFrame:
    base, quote = SPOT[symbol]
    return pl.read_parquet(require_real_data() / f"{base}_{quote}-1h.parquet")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- the replay server ------------------------------------------------------------------------


@dataclass
class BinanceReplay:
    """State of the fake venue: fixtures, injected faults per path, requests seen."""

    fixture: dict[str, Any]
    faults: dict[str, deque[str]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for p, _ in self.requests if p == path)

    def inject(self, path: str, *faults: str) -> None:
        self.faults.setdefault(path, deque()).extend(faults)

    def route(self, path: str, query: dict[str, str]) -> tuple[int, Any, float]:
        """(status, JSON body, delay seconds) for one request."""
        with self.lock:
            self.requests.append((path, query))
            fault = self.faults[path].popleft() if self.faults.get(path) else None
        if fault is not None:
            return _fault(fault)
        if path in self.fixed:
            return 200, self.fixed[path], 0.0
        handlers: dict[str, Callable[[], Any]] = {
            "/api/v3/exchangeInfo": _spot_exchange_info,
            "/fapi/v1/exchangeInfo": _perp_exchange_info,
            "/api/v3/klines": lambda: _serve_klines(query),
            "/api/v3/ticker/24hr": self._tickers,
            "/fapi/v1/fundingRate": lambda: _serve_funding(query),
        }
        if path not in handlers:
            return 404, {"code": -1, "msg": f"no route {path}"}, 0.0
        return 200, handlers[path](), 0.0

    def _tickers(self) -> list[dict[str, Any]]:
        real = self.fixture["methods"]["fetchTicker"][0]["httpResponse"]
        out = []
        for i, (symbol, _) in enumerate(SPOT.items()):
            scale = 1.0 / (i + 1)
            bid, ask = (
                float(real["bidPrice"]) * scale,
                float(real["askPrice"]) * scale * (1 + 0.0002 * i),
            )
            out.append(
                {
                    **real,
                    "symbol": symbol,
                    "bidPrice": f"{bid:.8f}",
                    "askPrice": f"{ask:.8f}",
                    "lastPrice": f"{ask:.8f}",
                    "quoteVolume": f"{float(real['quoteVolume']) * scale:.8f}",
                }
            )
        return out


def _fault(kind: str) -> tuple[int, Any, float]:
    if kind == "429":
        return (
            429,
            {
                "code": -1003,
                "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE.",
            },
            0.0,
        )
    if kind in ("500", "503"):  # Binance's own 5xx body: ccxt raises OperationFailed
        return (
            int(kind),
            {
                "code": -1001,
                "msg": "Internal error; unable to process your request. Please try again.",
            },
            0.0,
        )
    if kind == "502":  # a proxy's HTML page: ccxt raises ExchangeNotAvailable
        return 502, "<html><body>502 Bad Gateway</body></html>", 0.0
    if kind == "slow":
        return 200, [], 1.5
    if kind == "bad_symbol":
        return 400, {"code": -1121, "msg": "Invalid symbol."}, 0.0
    raise ValueError(kind)


def _filters() -> list[dict[str, str]]:
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.00000100",
            "maxPrice": "1000000.00",
            "tickSize": "0.00000100",
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": "0.00001000",
            "maxQty": "9000000.00",
            "stepSize": "0.00001000",
        },
    ]


def _spot_exchange_info() -> dict[str, Any]:
    symbols = [
        {
            "symbol": symbol,
            "status": "TRADING",
            "baseAsset": base,
            "baseAssetPrecision": 8,
            "quoteAsset": quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": _filters(),
            "permissions": [],
            "permissionSets": [["SPOT"]],
        }
        for symbol, (base, quote) in SPOT.items()
    ]
    return {
        "timezone": "UTC",
        "serverTime": _ms(CLOCK),
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": symbols,
    }


def _perp_exchange_info() -> dict[str, Any]:
    xrp = {
        "symbol": "XRPUSDT",
        "pair": "XRPUSDT",
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": XRP_PERP_ONBOARD_MS,
        "status": "TRADING",
        "baseAsset": "XRP",
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
        "pricePrecision": 4,
        "quantityPrecision": 1,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "filters": _filters(),
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC"],
    }
    return {
        "timezone": "UTC",
        "serverTime": _ms(CLOCK),
        "rateLimits": [],
        "assets": [],
        "symbols": [xrp],
    }


def _serve_klines(query: dict[str, str]) -> Any:
    frame = _klines(query["symbol"])
    interval = query["interval"]
    if interval != "1h":
        frame = resample_ohlcv(frame, "1h", interval)
    step_ms = {"1h": 3_600_000, "1d": 86_400_000}[interval]
    ms = pl.col("timestamp").dt.epoch("ms")
    if "startTime" in query:
        frame = frame.filter(ms >= int(query["startTime"]))
    if "endTime" in query:
        frame = frame.filter(ms <= int(query["endTime"]))
    frame = frame.head(min(int(query.get("limit", 500)), 1000))
    return [
        [
            ts,
            f"{o:.8f}",
            f"{h:.8f}",
            f"{lo:.8f}",
            f"{c:.8f}",
            f"{v:.8f}",
            ts + step_ms - 1,
            f"{v * c:.8f}",
            1,
            "0",
            "0",
            "0",
        ]
        for ts, o, h, lo, c, v in frame.with_columns(ms.alias("timestamp")).iter_rows()
    ]


def _serve_funding(query: dict[str, str]) -> Any:
    frame = pl.read_parquet(FUNDING_FILE).with_columns(pl.col("timestamp").dt.epoch("ms"))
    if "startTime" in query:
        frame = frame.filter(pl.col("timestamp") >= int(query["startTime"]))
    if "endTime" in query:
        frame = frame.filter(pl.col("timestamp") <= int(query["endTime"]))
    frame = frame.head(min(int(query.get("limit", 100)), 1000))
    return [
        {
            "symbol": "XRPUSDT",
            "fundingTime": ts,
            "fundingRate": f"{rate:.8f}",
            "markPrice": "1.00000000",
        }
        for ts, rate in frame.iter_rows()
    ]


def _handler(replay: BinanceReplay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            status, body, delay_s = replay.route(url.path, query)
            if delay_s:
                time.sleep(delay_s)
            payload = (body if isinstance(body, str) else json.dumps(body)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and hung up: that is the point of a slow response

        def log_message(self, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def replay() -> Iterator[tuple[BinanceReplay, str]]:
    require_real_data()
    state = BinanceReplay(json.loads(FIXTURE.read_text(encoding="utf-8")))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def local_client(section: ExchangeSection, base_url: str) -> Any:
    """The real ccxt binance client built by the product, with every REST host pointed at the
    local server (paths such as /api/v3 and /fapi/v1 stay as Binance has them)."""
    client = build_ccxt_client(section)
    client.urls["api"] = {
        key: re.sub(r"^https://[^/]+", base_url, url) for key, url in client.urls["api"].items()
    }
    return client


def make_source(
    replay: tuple[BinanceReplay, str], **section_values: Any
) -> tuple[CcxtSource, BinanceReplay, list[float]]:
    state, base_url = replay
    section = ExchangeSection(
        **{"timeout_ms": 400, "max_retries": 4, "retry_backoff_s": 0.5, **section_values}
    )
    sleeps: list[float] = []
    source = CcxtSource(
        section, client=local_client(section, base_url), sleep=sleeps.append, clock=lambda: CLOCK
    )
    return source, state, sleeps


# --- tests ------------------------------------------------------------------------------------


def test_replayed_fixture_payloads_parse_to_ccxt_unified_structures(
    replay: tuple[BinanceReplay, str],
) -> None:
    source, state, _ = make_source(replay)
    methods = state.fixture["methods"]
    ohlcv = methods["fetchOHLCV"][0]
    state.fixed["/api/v3/klines"] = ohlcv["httpResponse"]
    symbol, timeframe, since, limit = ohlcv["input"]
    assert source.client.fetch_ohlcv(symbol, timeframe, since, limit) == ohlcv["parsedResponse"]
    book = methods["fetchOrderBook"][0]
    state.fixed["/api/v3/depth"] = book["httpResponse"]
    parsed = source.client.fetch_order_book(*book["input"])
    assert (parsed["bids"], parsed["asks"]) == (
        book["parsedResponse"]["bids"],
        book["parsedResponse"]["asks"],
    )
    ticker = methods["fetchTicker"][0]
    state.fixed["/api/v3/ticker/24hr"] = ticker["httpResponse"]
    got = source.client.fetch_ticker(*ticker["input"])
    for key in ("bid", "ask", "last", "quoteVolume", "baseVolume", "timestamp"):
        assert got[key] == ticker["parsedResponse"][key], key


def test_markets_from_exchange_info_give_the_usdt_spot_symbols(
    replay: tuple[BinanceReplay, str],
) -> None:
    source, state, _ = make_source(replay)
    assert source.list_symbols() == ["BTC/USDT", "ETH/USDT", "XRP/USDT"]
    assert source.list_symbols() == ["BTC/USDT", "ETH/USDT", "XRP/USDT"]
    assert state.count("/api/v3/exchangeInfo") == 1  # ccxt caches the markets
    assert state.count("/fapi/v1/exchangeInfo") == 1


def test_fetch_ohlcv_paginates_to_the_exact_real_window(replay: tuple[BinanceReplay, str]) -> None:
    source, state, _ = make_source(replay)
    start, end = datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 4, 15, tzinfo=UTC)
    bars = source.fetch_ohlcv("ETH/USDT", "1h", start=start, end=end)
    expected = _klines("ETHUSDT").filter(pl.col("timestamp").is_between(start, end, closed="left"))
    assert bars.height == expected.height > 2000
    assert bars.equals(expected.cast(pl.Schema(OHLCV_SCHEMA)))
    assert state.count("/api/v3/klines") == 3  # 1000 + 1000 + the rest


def test_temporary_errors_retried_with_backoff_then_succeed(
    replay: tuple[BinanceReplay, str],
) -> None:
    source, state, sleeps = make_source(replay)
    source.list_symbols()
    state.inject("/api/v3/klines", "429", "503", "502", "slow")
    start = datetime(2021, 6, 1, tzinfo=UTC)
    with structlog.testing.capture_logs() as logs:
        bars = source.fetch_ohlcv("BTC/USDT", "1h", start=start, end=start + timedelta(days=2))
    assert bars.height == 48
    assert state.count("/api/v3/klines") == 5  # four failures, then the answer
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert [e["error"] for e in logs if e["event"] == "exchange_retry"] == [
        "DDoSProtection",
        "OperationFailed",
        "ExchangeNotAvailable",
        "RequestTimeout",
    ]


def test_permanent_error_raised_at_once_with_one_request(replay: tuple[BinanceReplay, str]) -> None:
    source, state, sleeps = make_source(replay)
    source.list_symbols()
    state.inject("/api/v3/klines", "bad_symbol")
    start = datetime(2021, 6, 1, tzinfo=UTC)
    with pytest.raises(ExchangePermanentError, match="BadSymbol") as caught:
        source.fetch_ohlcv("XRP/USDT", "1h", start=start, end=start + timedelta(days=1))
    # the ccxt error is named in the message, never chained (its text may quote the request)
    assert caught.value.__cause__ is None
    assert state.count("/api/v3/klines") == 1
    assert sleeps == []


def test_retries_exhausted_raise_temporary_error(replay: tuple[BinanceReplay, str]) -> None:
    source, state, sleeps = make_source(replay, max_retries=2)
    source.list_symbols()
    state.inject("/api/v3/klines", "500", "502", "500", "500")
    start = datetime(2021, 6, 1, tzinfo=UTC)
    with pytest.raises(ExchangeTemporaryError, match="after 2 retries") as caught:
        source.fetch_ohlcv("BTC/USDT", "1h", start=start, end=start + timedelta(days=1))
    assert caught.value.retryable
    assert state.count("/api/v3/klines") == 3
    assert sleeps == [0.5, 1.0]


def test_universe_snapshot_from_tickers_and_first_candles(
    replay: tuple[BinanceReplay, str],
) -> None:
    source, state, _ = make_source(replay)
    snap = source.universe_snapshot(CLOCK)
    assert snap["symbol"].to_list() == ["BTC/USDT", "ETH/USDT", "XRP/USDT"]
    real = state.fixture["methods"]["fetchTicker"][0]["httpResponse"]
    btc = snap.row(0, named=True)
    assert btc["daily_volume_usd"] == pytest.approx(float(real["quoteVolume"]))
    assert btc["spread_bps"] == pytest.approx(
        top_of_book_spread_bps(float(real["bidPrice"]), float(real["askPrice"]))
    )
    assert btc["listing_date"] == date(2020, 12, 1)  # first daily candle of the replayed file
    assert btc["age_days"] == (CLOCK.date() - date(2020, 12, 1)).days
    first_candle_requests = state.count("/api/v3/klines")
    assert first_candle_requests == 3
    source.universe_snapshot(CLOCK)
    assert state.count("/api/v3/klines") == first_candle_requests  # listing dates are cached
    assert state.count("/api/v3/ticker/24hr") == 2


def test_funding_rates_paginated_from_perpetual(
    replay: tuple[BinanceReplay, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ccxt_source, "PAGE_LIMIT", 40)
    source, state, _ = make_source(replay)
    start, end = datetime(2021, 11, 18, tzinfo=UTC), datetime(2021, 12, 18, tzinfo=UTC)
    rates = source.funding_rates("XRP/USDT", start=start, end=end)
    expected = pl.read_parquet(FUNDING_FILE).filter(
        pl.col("timestamp").is_between(start, end, closed="left")
    )
    assert rates.height == expected.height == 90
    assert rates["timestamp"].equals(expected["timestamp"])
    assert (rates["funding_rate"] - expected["funding_rate"]).abs().max() < 1e-9  # type: ignore[operator]
    # Pages of 40, 40, 10, then an empty page: a short page is not taken as the end, since
    # venues may cap a page below the limit asked for.
    assert state.count("/fapi/v1/fundingRate") == 4
    assert source.funding_rates(
        "BTC/USDT", start=start, end=end
    ).is_empty()  # no BTC perpetual here
    assert state.count("/fapi/v1/fundingRate") == 4


def test_api_keys_never_logged_or_raised(replay: tuple[BinanceReplay, str]) -> None:
    secret, key = "s3cr3t-never-print-me", "k3y-never-print-me"
    source, state, _ = make_source(
        replay, api_key=SecretStr(key), api_secret=SecretStr(secret), max_retries=1
    )
    source.list_symbols()
    state.inject("/api/v3/klines", "429", "429")
    start = datetime(2021, 6, 1, tzinfo=UTC)
    with structlog.testing.capture_logs() as logs, pytest.raises(ExchangeTemporaryError) as caught:
        source.fetch_ohlcv("BTC/USDT", "1h", start=start, end=start + timedelta(days=1))
    text = json.dumps(logs, default=str) + str(caught.value) + repr(source.exchange)
    assert logs and secret not in text and key not in text
    assert source.client.apiKey == key  # the client does have them


def test_cli_fetch_fills_store_and_rerun_adds_nothing(
    replay: tuple[BinanceReplay, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from coin_engine.cli.app import app

    _, base_url = replay
    monkeypatch.setattr(
        ccxt_source, "build_ccxt_client", lambda section, **_: local_client(section, base_url)
    )
    store = tmp_path / "store"
    args = [
        "data",
        "fetch",
        "--exchange",
        "binance",
        "--symbols",
        "BTC/USDT,ETH/USDT",
        "--timeframe",
        "1h",
        "--since",
        "2021-07-01",
        "--until",
        "2021-07-10",
        "--store",
        str(store),
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "+216 rows" in first.output
    assert sorted(p.name for p in store.iterdir()) == ["BTC_USDT-1h.parquet", "ETH_USDT-1h.parquet"]
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert second.output.count("up to date") == 2
    stored = pl.read_parquet(store / "BTC_USDT-1h.parquet")
    expected = _klines("BTCUSDT").filter(
        pl.col("timestamp").is_between(
            datetime(2021, 7, 1, tzinfo=UTC), datetime(2021, 7, 10, tzinfo=UTC), closed="left"
        )
    )
    assert stored.equals(expected.cast(pl.Schema(OHLCV_SCHEMA)))
