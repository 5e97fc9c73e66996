"""The REAL ccxt.pro binance client (``point_at`` applied) against the simulator's websocket
streams: klines for many symbols on one connection with the final candle equal to REST,
bookTicker, diff-depth order book sync (and resync after a gap), disconnects, Binance's stream
and message-rate limits, malformed requests, server pings, and user data (``watch_orders``) for
spot (WS-API signature subscription) and USD-M (listenKey).

Market streams run on an accelerated clock (``time_scale=60``: a 1m bar closes every second);
signed requests need the real clock (ccxt signs with its own), so user data runs on another
simulator at ``time_scale=1``.
"""

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import ccxt
import ccxt.pro
import pytest
import pytest_asyncio

from hamilton_exec.exchange_sim import SimulatorServer, WsLimits
from trading_core.market.ccxt_source import point_at

KEY, SECRET = "K", "S"
SYMBOLS = ["BTC/USDT", "ETH/USDT", *[f"C{i:02d}/USDT" for i in range(22)]]
OPTIONS = {
    "defaultType": "spot",
    "fetchMarkets": {"types": ["spot", "linear"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
}


@pytest.fixture(scope="module")
def fast_sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(
        symbols=SYMBOLS, api_key=KEY, api_secret=SECRET, seed=5, time_scale=60.0,
        stream_interval_s=0.25,
    ) as sim:  # fmt: skip
        yield sim


@pytest.fixture(scope="module")
def live_sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(
        symbols=["BTC/USDT", "ETH/USDT"], balances={"USDT": 1_000_000, "BTC": 1},
        futures_balances={"USDT": 100_000}, api_key=KEY, api_secret=SECRET, seed=5,
    ) as sim:  # fmt: skip
        yield sim


@pytest.fixture(autouse=True)
def clear_faults(fast_sim: SimulatorServer) -> Iterator[None]:
    yield
    fast_sim.ws_faults.clear()


async def pro(sim: SimulatorServer) -> Any:
    client = ccxt.pro.binance(
        {"apiKey": KEY, "secret": SECRET, "enableRateLimit": False, "options": dict(OPTIONS)}
    )
    point_at(client, sim.base_url)
    await client.load_markets()
    return client


@pytest_asyncio.fixture
async def client(fast_sim: SimulatorServer) -> AsyncIterator[Any]:
    c = await pro(fast_sim)
    yield c
    await c.close()


def record_raw(client: Any) -> list[dict[str, Any]]:
    """Every decoded message ccxt receives (ccxt drops the kline's ``x`` flag)."""
    seen: list[dict[str, Any]] = []
    original = client.handle_message

    def spy(conn: Any, message: Any) -> Any:
        seen.append(message)
        return original(conn, message)

    client.handle_message = spy
    return seen


def public_clients(client: Any) -> list[str]:
    return [url for url in client.clients if url.startswith("ws://")]


# --- klines -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_klines_22_symbols_one_connection_final_candle_equals_rest(
    fast_sim: SimulatorServer, client: Any
) -> None:
    raw = record_raw(client)
    symbols = SYMBOLS[2:]
    deadline = time.monotonic() + 8
    finals: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(finals) < len(symbols):
        await client.watch_ohlcv_for_symbols([[s, "1m"] for s in symbols])
        for m in raw:
            if m.get("e") == "kline" and m["k"]["x"]:
                finals.setdefault(m["s"], m)
    assert len(finals) == len(symbols)
    assert len(public_clients(client)) == 1 and "/stream/ws/" in public_clients(client)[0]
    for sym_id, msg in list(finals.items())[:5]:
        k = msg["k"]
        assert set(msg) == {"e", "E", "s", "k"}
        assert set(k) == set("tTsifLochlvnxqVQB")
        assert msg["E"] > k["T"]  # pushed after the close
        symbol = sym_id[:-4] + "/USDT"
        rest = await client.public_get_klines(
            {"symbol": sym_id, "interval": "1m", "startTime": k["t"], "limit": 1}
        )
        assert rest[0][:6] == [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"]]
        assert rest[0][6:11] == [k["T"], k["q"], k["n"], k["V"], k["Q"]]
        stored = {c[0]: c for c in client.ohlcvs[symbol]["1m"]}
        assert stored[k["t"]][1:5] == [float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"])]


@pytest.mark.asyncio
async def test_forming_kline_pushed_before_close_not_final(client: Any) -> None:
    raw = record_raw(client)
    await client.watch_ohlcv("ETH/USDT", "1m")
    forming = [m for m in raw if m.get("e") == "kline" and not m["k"]["x"]]
    assert forming and all(m["E"] <= m["k"]["T"] for m in forming)


@pytest.mark.asyncio
async def test_perp_klines_served_on_fstream_market_category(client: Any) -> None:
    bars = await client.watch_ohlcv_for_symbols([["BTC/USDT:USDT", "1m"]])
    assert "BTC/USDT:USDT" in bars
    assert any("/fstream/market/ws/" in url for url in public_clients(client))


# --- bookTicker and depth -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_book_ticker_spot_and_perp_match_engine_book(
    fast_sim: SimulatorServer, client: Any
) -> None:
    for symbol, venue in (("BTC/USDT", "spot"), ("BTC/USDT:USDT", "futures")):
        tickers = await client.watch_bids_asks([symbol])
        info = tickers[symbol]["info"]
        expected = {"u", "s", "b", "B", "a", "A"} | (
            {"e", "E", "T"} if venue == "futures" else set()
        )
        assert set(info) == expected
        book = fast_sim.engine.book(venue, "BTCUSDT", int(info["u"]), 1)
        assert (float(info["b"]), float(info["a"])) == (
            float(book.bids[0][0]),
            float(book.asks[0][0]),
        )


async def synced_book(client: Any, symbol: str, updates: int = 3) -> Any:
    book = await client.watch_order_book(symbol)
    for _ in range(updates):
        book = await client.watch_order_book(symbol)
    return book


def assert_book_exact(sim: SimulatorServer, venue: str, sym_id: str, book: Any) -> None:
    expected = sim.hub.book_at(venue, [sym_id], [book["nonce"]])[0][0]  # type: ignore[arg-type]
    assert book["bids"] == [[float(p), float(q)] for p, q in expected.bids]
    assert book["asks"] == [[float(p), float(q)] for p, q in expected.asks]


@pytest.mark.asyncio
async def test_order_book_sync_spot_and_perp_equals_book_at_nonce(
    fast_sim: SimulatorServer, client: Any
) -> None:
    spot = await synced_book(client, "ETH/USDT")
    assert_book_exact(fast_sim, "spot", "ETHUSDT", spot)
    perp = await synced_book(client, "ETH/USDT:USDT")
    assert_book_exact(fast_sim, "futures", "ETHUSDT", perp)


@pytest.mark.asyncio
async def test_depth_gap_raises_checksum_error_then_rewatch_resyncs(
    fast_sim: SimulatorServer, client: Any
) -> None:
    for symbol, venue in (("BTC/USDT", "spot"), ("BTC/USDT:USDT", "futures")):
        await synced_book(client, symbol)
        fast_sim.ws_faults.inject("depth_gap", symbol="BTCUSDT", venue=venue)
        with pytest.raises(ccxt.ChecksumError):
            for _ in range(20):
                await client.watch_order_book(symbol)
        assert ("depth_gap", "BTCUSDT") in fast_sim.ws_faults.fired
        book = await synced_book(client, symbol)
        assert_book_exact(fast_sim, venue, "BTCUSDT", book)


# --- faults ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_disconnect_raises_network_error_and_rewatch_resubscribes(
    fast_sim: SimulatorServer, client: Any
) -> None:
    pairs = [[s, "1m"] for s in SYMBOLS[:3]]
    await client.watch_ohlcv_for_symbols(pairs)
    fast_sim.ws_faults.inject("disconnect", path="/stream/ws")
    with pytest.raises(ccxt.NetworkError, match="closed by remote server"):
        for _ in range(50):
            await client.watch_ohlcv_for_symbols(pairs)
    await client.watch_ohlcv_for_symbols(pairs)
    conns = [c for c in fast_sim.ws.conns.values() if c.path.startswith("/stream/ws")]
    assert len(conns) == 1
    assert set(conns[0].streams) == {f"{s.replace('/', '').lower()}@kline_1m" for s in SYMBOLS[:3]}


@pytest.mark.asyncio
async def test_stall_then_delay_faults_hold_stream_while_connection_stays_open(
    fast_sim: SimulatorServer,
) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{fast_sim.ws_base_url}/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m"
        async with session.ws_connect(url) as ws:
            fast_sim.ws_faults.inject("stall", stream="btcusdt@*", duration_s=1.0)
            got = await collect(ws, 0.8)
            assert got and {m["stream"] for m in got} == {"ethusdt@kline_1m"}
            fast_sim.ws_faults.inject("delay", stream="ethusdt@*", delay_s=0.8)
            early = await collect(ws, 0.6)
            assert "ethusdt@kline_1m" not in {m["stream"] for m in early}
            late = await collect(ws, 1.0)
            assert "ethusdt@kline_1m" in {m["stream"] for m in late}
            fast_sim.ws_faults.inject("reorder", stream="ethusdt@*", count=3)
            events = [m["data"]["E"] for m in await collect(ws, 2.0) if m["stream"][:3] == "eth"]
            assert events[:3] == sorted(events[:3], reverse=True) and events[0] > events[2]


async def collect(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if msg.type == aiohttp.WSMsgType.TEXT:
            out.append(json.loads(msg.data))
    return out


def test_admin_ws_faults_endpoint_injects_lists_and_clears(fast_sim: SimulatorServer) -> None:
    def call(method: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        url = f"{fast_sim.base_url}/_sim/ws_faults"
        req = urllib.request.Request(url, data, method=method)  # noqa: S310 - local simulator
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            return json.loads(resp.read())

    made = call("POST", {"kind": "stall", "stream": "*@bookTicker", "duration_s": 3})
    assert made["kind"] == "stall"
    assert [f["kind"] for f in call("GET")] == ["stall"]
    call("DELETE")
    assert call("GET") == []


# --- limits and malformed requests -----------------------------------------------------------


@pytest.mark.asyncio
async def test_six_subscribes_in_one_second_disconnected_1008_network_error(
    fast_sim: SimulatorServer, client: Any
) -> None:
    calls = [client.watch_ohlcv_for_symbols([[s, "5m"]]) for s in SYMBOLS[2:9]]
    results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors and all(isinstance(e, ccxt.NetworkError) for e in errors)
    assert any("closing code 1008" in str(e) for e in errors)


@pytest.mark.asyncio
async def test_stream_limit_exceeded_exchange_error_code_2() -> None:
    limits = WsLimits(streams={"spot": 10, "futures": 5})
    with SimulatorServer(symbols=SYMBOLS, api_key=KEY, api_secret=SECRET, ws_limits=limits) as sim:
        c = await pro(sim)
        try:
            with pytest.raises(ccxt.ExchangeError, match='"code":2'):
                await c.watch_ohlcv_for_symbols([[s, "1m"] for s in SYMBOLS[:11]])
        finally:
            await c.close()


@pytest.mark.asyncio
async def test_malformed_requests_answered_with_binance_codes(fast_sim: SimulatorServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{fast_sim.ws_base_url}/ws") as ws,
    ):
        cases: list[tuple[str, Any]] = [
            ("{not json", {"error": {"code": 3}}),
            ('{"method":"FOO","id":1}', {"error": {"code": 2}, "id": 1}),
            (
                '{"method":"SUBSCRIBE","params":["btcusdt@kline_7m"],"id":2}',
                {"error": {"code": 2}},
            ),
            (
                '{"method":"SUBSCRIBE","params":["BTCUSDT@kline_1m"],"id":3}',
                {"error": {"code": 2}},
            ),
        ]
        for text, want in cases:
            await ws.send_str(text)
            got = await next_reply(ws)
            assert got["error"]["code"] == want["error"]["code"], (text, got)
            await asyncio.sleep(0.25)  # stay under 5 messages a second
        for text, want in [
            ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":4}', 1),
            ('{"method":"GET_PROPERTY","params":["speed"],"id":5}', 0),
            ('{"method":"SUBSCRIBE","params":["btcusdt@kline_1m"],"id":6.5}', 2),
        ]:
            await ws.send_str(text)
            assert (await next_reply(ws))["error"]["code"] == want
            await asyncio.sleep(0.25)
        await ws.send_str('{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":7}')
        assert await next_reply(ws) == {"result": None, "id": 7}
        await asyncio.sleep(0.25)
        await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":8}')
        assert await next_reply(ws) == {"result": ["btcusdt@bookTicker"], "id": 8}


async def next_reply(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    while True:
        msg = json.loads((await ws.receive(timeout=3)).data)
        if "result" in msg or "error" in msg:
            return dict(msg)


@pytest.mark.asyncio
async def test_unanswered_server_pings_connection_dropped() -> None:
    limits = WsLimits(ping_interval_s={"spot": 0.2, "futures": 0.2},
                      pong_timeout_s={"spot": 0.5, "futures": 0.5})  # fmt: skip
    with SimulatorServer(
        symbols=SYMBOLS[:2], api_key=KEY, api_secret=SECRET, ws_limits=limits
    ) as sim:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{sim.ws_base_url}/ws", autoping=False) as ws:
                pings = 0
                while True:
                    msg = await ws.receive(timeout=3)
                    if msg.type == aiohttp.WSMsgType.PING:
                        pings += 1
                    elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
                assert pings >= 1 and ws.close_code == 1008
            async with session.ws_connect(f"{sim.ws_base_url}/ws") as ws:  # autoping: pongs
                await asyncio.sleep(1.2)
                assert not ws.closed


# --- user data ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_watch_orders_spot_receives_new_then_fill_from_rest_order(
    live_sim: SimulatorServer,
) -> None:
    c = await pro(live_sim)
    try:
        watching = asyncio.ensure_future(c.watch_orders("BTC/USDT"))
        await asyncio.sleep(0.3)
        ticker = await c.fetch_ticker("BTC/USDT")
        order = await c.create_order(
            "BTC/USDT", "limit", "buy", 0.001, round(ticker["bid"] * 0.9, 2)
        )
        seen = await asyncio.wait_for(watching, 5)
        assert [(o["id"], o["status"]) for o in seen] == [(order["id"], "open")]
        await c.cancel_order(order["id"], "BTC/USDT")
        seen = await asyncio.wait_for(c.watch_orders("BTC/USDT"), 5)
        assert seen[-1]["status"] == "canceled"
        market = await c.create_order("BTC/USDT", "market", "buy", 0.001)
        seen = await asyncio.wait_for(c.watch_orders("BTC/USDT"), 5)
        while seen[-1]["status"] != "closed":  # executionReport NEW, then TRADE
            seen = await asyncio.wait_for(c.watch_orders("BTC/USDT"), 5)
        assert (seen[-1]["id"], seen[-1]["filled"]) == (market["id"], 0.001)
    finally:
        await c.close()


@pytest.mark.asyncio
async def test_watch_orders_usdm_listen_key_receives_fill(live_sim: SimulatorServer) -> None:
    c = await pro(live_sim)
    try:
        watching = asyncio.ensure_future(c.watch_orders("BTC/USDT:USDT"))
        await asyncio.sleep(0.3)
        order = await c.create_order("BTC/USDT:USDT", "market", "buy", 0.002)
        seen = await asyncio.wait_for(watching, 5)
        assert seen[0]["id"] == order["id"]

        def closed() -> list[Any]:  # ccxt's order cache: the fill may already be in it
            return [
                o for o in (c.orders or []) if o["id"] == order["id"] and o["status"] == "closed"
            ]

        while not closed():  # NEW, then the fill (maybe in the same read: then no new update)
            await asyncio.wait_for(c.watch_orders("BTC/USDT:USDT"), 5)
        assert closed()[-1]["filled"] == 0.002
        assert any("/fstream/private/ws?listenKey=" in url for url in c.clients)
        assert live_sim.listen_keys.keys
    finally:
        await c.close()


def test_time_scale_runs_server_clock_faster(fast_sim: SimulatorServer) -> None:
    start = fast_sim.server_time_ms()
    time.sleep(0.2)
    assert 9_000 < fast_sim.server_time_ms() - start < 20_000


@pytest.mark.asyncio
async def test_400_symbols_kline_and_book_ticker_one_connection_finals_promptly_after_close() -> (
    None
):
    """All 400 final klines arrive on one connection right after the close, before the next
    forming-bar push (the latency itself is measured in bench/stream_feed.py, not asserted)."""
    symbols = [f"Z{i:03d}/USDT" for i in range(400)]
    with SimulatorServer(
        symbols=symbols, api_key=KEY, api_secret=SECRET, time_scale=20.0, stream_interval_s=1.0
    ) as sim:
        ids = [s.replace("/", "").lower() for s in symbols]
        streams = [f"{i}@kline_1m" for i in ids] + [f"{i}@bookTicker" for i in ids]
        url = f"{sim.ws_base_url}/ws"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}))
            finals: dict[int, list[float]] = {}
            tickers = 0
            end = time.monotonic() + 8
            while time.monotonic() < end and not any(len(v) == 400 for v in finals.values()):
                msg = json.loads((await ws.receive(timeout=5)).data)
                if msg.get("e") == "kline" and msg["k"]["x"]:
                    finals.setdefault(msg["k"]["T"], []).append(time.time() * 1000)
                tickers += "b" in msg and "e" not in msg
        close_ms, arrivals = next((t, v) for t, v in finals.items() if len(v) == 400)
        due = sim.wall_time_ms(close_ms + 1)
        assert max(arrivals) - due < 1000, (min(arrivals) - due, max(arrivals) - due)
        assert tickers >= 400
