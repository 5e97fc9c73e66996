"""The REAL ccxt binance client (built by ``build_ccxt_client`` with ``base_url``) against the
exchange simulator, spot and USD-M: market data, orders, errors as ccxt exception classes, and
injected faults.

What ccxt really maps (asserted below): -1021 InvalidNonce; -1022 / -2015 AuthenticationError;
-2010 balance InsufficientFunds, duplicate id InvalidOrder, would-take OrderImmediatelyFillable;
-1013 LOT_SIZE / PRICE_FILTER InvalidOrder but NOTIONAL BadRequest; -2013 / -2011 OrderNotFound;
429 DDoSProtection (checked before the body, so never RateLimitExceeded); 503 -1001 and 500
-1000 OperationFailed; 502 HTML ExchangeNotAvailable; a timeout RequestTimeout; a dropped
connection NetworkError. USD-M codes (-2019, -2022, -4116, -4164, -5021, -5022) are only in
ccxt's per-host table for ``fapi.binance.com``, so against a rewritten URL they arrive as plain
ExchangeError (or the specific class if that table is ever applied).
"""

import json
import time
import urllib.request
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import ccxt
import pytest
from pydantic import SecretStr

from hamilton_exec.exchange_sim import EngineConfig, SimulatorServer
from trading_core.config.models import ExchangeSection
from trading_core.market.ccxt_source import build_ccxt_client

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
KEY, SECRET = "K", "S"
SPOT_BALANCES = {"USDT": 1_000_000, "BTC": 0.5}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer(
        symbols=["BTC/USDT", "ETH/USDT"],
        balances=SPOT_BALANCES,
        futures_balances={"USDT": 100_000},
        api_key=KEY,
        api_secret=SECRET,
        seed=11,
        config=EngineConfig(levels=5, level_notional=50_000.0, match_interval_ms=100),
    )
    with server:
        yield server


def make_client(
    sim: SimulatorServer, *, key: str = KEY, secret: str = SECRET, timeout_ms: int = 3000
) -> Any:
    section = ExchangeSection(
        api_key=SecretStr(key),
        api_secret=SecretStr(secret),
        base_url=sim.base_url,
        timeout_ms=timeout_ms,
    )
    client = build_ccxt_client(section)
    client.enableRateLimit = False  # the simulator enforces weights itself; keep the tests quick
    return client


@pytest.fixture(scope="module")
def client(sim: SimulatorServer) -> Any:
    c = make_client(sim)
    c.load_markets()
    return c


@pytest.fixture(autouse=True)
def fresh_state(sim: SimulatorServer) -> Iterator[None]:
    yield
    sim.faults.clear()
    sim.set_clock_offset_ms(0)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        sim.set_price(symbol, None)
        with sim.lock:
            now = sim.server_time_ms()
            sim.engine.cancel_all("spot", symbol, now)
            sim.engine.cancel_all("futures", symbol, now)
    sim.set_balances(
        spot=SPOT_BALANCES,
        futures={"USDT": 100_000},
        positions={"BTCUSDT": {"amount": 0}, "ETHUSDT": {"amount": 0}},
    )


def cid(name: str) -> str:
    return f"{name}-{time.monotonic_ns() % 10**9}"


def mid(client: Any, symbol: str) -> float:
    return float(client.fetch_ticker(symbol)["last"])


# --- market data ----------------------------------------------------------------------------


def test_load_markets_spot_and_perp_with_real_filters(client: Any) -> None:
    spot, perp = client.market(SPOT), client.market(PERP)
    assert (spot["type"], perp["type"], perp["settle"]) == ("spot", "swap", "USDT")
    assert (spot["precision"]["price"], spot["precision"]["amount"]) == (0.01, 0.00001)
    assert (perp["precision"]["price"], perp["precision"]["amount"]) == (0.1, 0.001)
    assert (spot["limits"]["cost"]["min"], perp["limits"]["cost"]["min"]) == (5.0, 100.0)


def test_fetch_time_follows_clock_offset(sim: SimulatorServer, client: Any) -> None:
    sim.set_clock_offset_ms(3000)
    assert abs(client.fetch_time() - time.time() * 1000 - 3000) < 500


def test_fetch_ohlcv_last_bar_is_forming(client: Any) -> None:
    for symbol in (SPOT, PERP):
        bars = client.fetch_ohlcv(symbol, "1h", limit=5)
        now = client.fetch_time()
        assert len(bars) == 5
        assert bars[-1][0] <= now < bars[-1][0] + 3_600_000
        assert [b[0] - a[0] for a, b in pairwise(bars)] == [3_600_000] * 4
        assert all(bar[3] <= min(bar[1], bar[4]) <= max(bar[1], bar[4]) <= bar[2] for bar in bars)


def test_tickers_book_and_funding_consistent(client: Any) -> None:
    book = client.fetch_order_book(SPOT, 5)
    assert book["bids"][0][0] < book["asks"][0][0]
    assert set(client.fetch_tickers([SPOT, "ETH/USDT"])) == {SPOT, "ETH/USDT"}
    assert client.fetch_funding_rate(PERP)["fundingRate"] is not None
    history = client.fetch_funding_rate_history(PERP, limit=3)
    assert [h["timestamp"] % (8 * 3_600_000) for h in history] == [0, 0, 0]


# --- spot orders ----------------------------------------------------------------------------


def test_spot_limit_create_fetch_cancel_roundtrip(client: Any) -> None:
    price = round(mid(client, SPOT) * 0.95, 2)
    order = client.create_order(SPOT, "limit", "buy", 0.01, price, {"clientOrderId": cid("rt")})
    assert order["status"] == "open"
    assert client.fetch_order(order["id"], SPOT)["status"] == "open"
    by_cid = client.fetch_order(None, SPOT, {"clientOrderId": order["clientOrderId"]})
    assert by_cid["id"] == order["id"]
    assert [o["id"] for o in client.fetch_open_orders(SPOT)] == [order["id"]]
    assert client.fetch_balance()["USDT"]["used"] == pytest.approx(0.01 * price)
    assert client.cancel_order(order["id"], SPOT)["status"] == "canceled"
    assert client.fetch_balance()["USDT"]["used"] == 0


def test_spot_market_beyond_depth_partially_filled_expired(client: Any) -> None:
    order = client.create_order(SPOT, "market", "buy", 6)
    assert order["status"] == "expired"
    assert 0 < order["filled"] < 6
    assert len(order["trades"]) == 5


def test_spot_resting_limit_fills_when_price_crosses(sim: SimulatorServer, client: Any) -> None:
    price = round(mid(client, SPOT) * 0.98, 2)
    order = client.create_order(SPOT, "limit", "buy", 1.5, price)
    sim.set_price("BTCUSDT", price * 0.99)
    deadline = time.monotonic() + 5
    while client.fetch_order(order["id"], SPOT)["status"] != "closed":
        assert time.monotonic() < deadline, "the resting order never filled"
        time.sleep(0.05)
    trades = client.fetch_my_trades(SPOT, params={"orderId": order["id"]})
    assert len(trades) >= 2  # one book level (~0.86 BTC) per match interval
    assert all(t["takerOrMaker"] == "maker" and t["price"] == price for t in trades)


def test_spot_cancel_all_orders_cancels_every_open_one(client: Any) -> None:
    price = round(mid(client, SPOT) * 0.9, 2)
    for _ in range(2):
        client.create_order(SPOT, "limit", "buy", 0.001, price)
    assert len(client.cancel_all_orders(SPOT)) == 2
    assert client.fetch_open_orders(SPOT) == []


# --- spot errors as ccxt exceptions ---------------------------------------------------------


def test_server_behind_client_clock_raises_invalid_nonce(sim: SimulatorServer, client: Any) -> None:
    sim.set_clock_offset_ms(-2000)  # the request is 2 s ahead of the server
    with pytest.raises(ccxt.InvalidNonce, match="ahead of the server"):
        client.fetch_balance()


def test_stale_timestamp_raises_invalid_nonce(sim: SimulatorServer, client: Any) -> None:
    sim.set_clock_offset_ms(6000)  # older than recvWindow (5000)
    with pytest.raises(ccxt.InvalidNonce, match="outside of the recvWindow"):
        client.fetch_balance()


def test_wrong_secret_or_key_raises_authentication_error(sim: SimulatorServer) -> None:
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        make_client(sim, secret=SECRET + "x").fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        make_client(sim, key="wrong").fetch_balance()


def test_unaffordable_order_raises_insufficient_funds(client: Any) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order(SPOT, "limit", "sell", 5, round(mid(client, SPOT), 2))


def test_under_min_notional_raises_bad_request(client: Any) -> None:
    with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL") as exc:
        client.create_order(SPOT, "market", "buy", 0.00005)
    assert not isinstance(exc.value, ccxt.InvalidOrder)


def test_off_tick_price_raw_call_raises_invalid_order(client: Any) -> None:
    request = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        client.private_post_order({**request, "quantity": "0.001", "price": "50000.001"})
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        client.private_post_order({**request, "quantity": "0.0010001", "price": "50000"})


def test_unknown_order_raises_order_not_found(client: Any) -> None:
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        client.fetch_order("42", SPOT)
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        client.cancel_order("42", SPOT)


def test_duplicate_client_id_while_open_raises_invalid_order(client: Any) -> None:
    price, the_id = round(mid(client, SPOT) * 0.9, 2), cid("dup")
    first = client.create_order(SPOT, "limit", "buy", 0.001, price, {"clientOrderId": the_id})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        client.create_order(SPOT, "limit", "buy", 0.001, price, {"clientOrderId": the_id})
    client.cancel_order(first["id"], SPOT)
    again = client.create_order(SPOT, "limit", "buy", 0.001, price, {"clientOrderId": the_id})
    assert again["id"] != first["id"]


def test_post_only_that_would_take_raises_order_immediately_fillable(client: Any) -> None:
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        client.create_order(
            SPOT, "limit", "buy", 0.001, round(mid(client, SPOT) * 1.01, 2), {"postOnly": True}
        )


# --- faults ---------------------------------------------------------------------------------


def test_injected_429_raises_ddos_protection_with_retry_after(
    sim: SimulatorServer, client: Any
) -> None:
    sim.faults.inject("GET /api/v3/account", "429", retry_after_s=7)
    with pytest.raises(ccxt.DDoSProtection) as exc:
        client.fetch_balance()
    assert not isinstance(exc.value, ccxt.RateLimitExceeded)
    assert client.last_response_headers["Retry-After"] == "7"
    assert client.fetch_balance()["BTC"]["free"] == 0.5


def test_weight_over_limit_answers_429() -> None:
    with SimulatorServer(symbols=["BTC/USDT"], weight_limits={"spot": 3, "futures": 3}) as small:
        c = make_client(small)
        while time.time() % 60 > 58:  # weights count per clock minute: stay inside one
            time.sleep(0.1)
        for used in (1, 2, 3):
            c.fetch_time()
            assert c.last_response_headers["x-mbx-used-weight-1m"] == str(used)
        with pytest.raises(ccxt.DDoSProtection, match="-1003"):
            c.fetch_time()
        assert int(c.last_response_headers["Retry-After"]) <= 60


def test_503_before_raises_operation_failed_and_places_nothing(
    sim: SimulatorServer, client: Any
) -> None:
    sim.faults.inject("POST /api/v3/order", "503_before")
    the_id = cid("503b")
    with pytest.raises(ccxt.OperationFailed, match="-1001"):
        client.create_order(SPOT, "market", "buy", 0.001, None, {"clientOrderId": the_id})
    assert the_id not in sim.state()["orders_per_client_id"]


def test_503_after_raises_operation_failed_but_order_exists(
    sim: SimulatorServer, client: Any
) -> None:
    sim.faults.inject("POST /api/v3/order", "503_after")
    the_id = cid("503a")
    with pytest.raises(ccxt.OperationFailed):
        client.create_order(SPOT, "market", "buy", 0.001, None, {"clientOrderId": the_id})
    assert client.fetch_order(None, SPOT, {"clientOrderId": the_id})["status"] == "closed"


def test_accept_then_timeout_raises_request_timeout_while_order_exists(
    sim: SimulatorServer,
) -> None:
    c = make_client(sim, timeout_ms=400)
    c.load_markets()
    sim.faults.inject("POST /api/v3/order", "accept_then_timeout", delay_s=1.0)
    the_id = cid("att")
    with pytest.raises(ccxt.RequestTimeout):
        c.create_order(SPOT, "market", "buy", 0.001, None, {"clientOrderId": the_id})
    assert sim.state()["orders_per_client_id"][the_id] == 1
    assert c.fetch_order(None, SPOT, {"clientOrderId": the_id})["status"] == "closed"


def test_timeout_before_raises_request_timeout_and_places_nothing(sim: SimulatorServer) -> None:
    c = make_client(sim, timeout_ms=400)
    c.load_markets()
    sim.faults.inject("POST /api/v3/order", "timeout_before", delay_s=1.0)
    the_id = cid("tob")
    with pytest.raises(ccxt.RequestTimeout):
        c.create_order(SPOT, "market", "buy", 0.001, None, {"clientOrderId": the_id})
    with pytest.raises(ccxt.OrderNotFound):
        c.fetch_order(None, SPOT, {"clientOrderId": the_id})


def test_reset_after_raises_network_error_but_order_exists(
    sim: SimulatorServer, client: Any
) -> None:
    sim.faults.inject("POST /api/v3/order", "reset_after")
    the_id = cid("reset")
    with pytest.raises(ccxt.NetworkError):
        client.create_order(SPOT, "market", "buy", 0.001, None, {"clientOrderId": the_id})
    assert client.fetch_order(None, SPOT, {"clientOrderId": the_id})["status"] == "closed"


def test_not_found_fault_answers_order_not_found_although_order_exists(
    sim: SimulatorServer, client: Any
) -> None:
    order = client.create_order(SPOT, "market", "buy", 0.001)
    sim.faults.inject("GET /api/v3/order", "not_found")
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order(order["id"], SPOT)
    assert client.fetch_order(order["id"], SPOT)["status"] == "closed"


def test_502_and_500_before_raise_network_family(sim: SimulatorServer, client: Any) -> None:
    sim.faults.inject("GET /api/v3/time", "502_before")
    sim.faults.inject("GET /api/v3/time", "500_before")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.fetch_time()
    with pytest.raises(ccxt.OperationFailed, match="-1000"):
        client.fetch_time()


# --- USD-M ----------------------------------------------------------------------------------


def test_perp_market_order_opens_and_reduce_only_closes_position(client: Any) -> None:
    opened = client.create_order(PERP, "market", "buy", 0.01)
    assert (opened["status"], opened["filled"]) == ("closed", 0.01)
    [position] = client.fetch_positions([PERP])
    assert (position["side"], position["contracts"]) == ("long", 0.01)
    closed = client.create_order(PERP, "market", "sell", 0.01, None, {"reduceOnly": True})
    assert closed["reduceOnly"] is True
    assert client.fetch_positions([PERP]) == []
    balance = client.fetch_balance({"type": "future"})
    assert 99_000 < balance["USDT"]["total"] < 100_000 + 100


def test_perp_limit_create_fetch_cancel_all(client: Any) -> None:
    price = round(mid(client, PERP) * 0.95, 1)
    order = client.create_order(PERP, "limit", "buy", 0.01, price, {"clientOrderId": cid("pl")})
    assert client.fetch_order(order["id"], PERP)["status"] == "open"
    assert len(client.fetch_open_orders(PERP)) == 1
    client.cancel_all_orders(PERP)
    assert client.fetch_order(order["id"], PERP)["status"] == "canceled"


@pytest.mark.parametrize(
    ("case", "code"),
    [("reduce_only_opening", -2022), ("margin", -2019), ("post_only_taking", -5022),
     ("min_notional", -4164), ("duplicate_id", -4116)],
)  # fmt: skip
def test_perp_rejection_arrives_as_exchange_error_with_code(
    sim: SimulatorServer, client: Any, case: str, code: int
) -> None:
    price = mid(client, PERP)
    if case == "margin":
        sim.set_balances(futures={"USDT": 10})
    if case == "duplicate_id":
        client.create_order(
            PERP, "limit", "buy", 0.01, round(price * 0.9, 1), {"clientOrderId": "same"}
        )
    buy, sell = "buy", "sell"
    attempts = {
        "reduce_only_opening": (sell, "market", None, {"reduceOnly": True}),
        "margin": (buy, "market", None, {}),
        "post_only_taking": (buy, "limit", round(price * 1.01, 1), {"postOnly": True}),
        "min_notional": (buy, "market", None, {}),
        "duplicate_id": (buy, "limit", round(price * 0.9, 1), {"clientOrderId": "same"}),
    }
    side, kind, limit, params = attempts[case]
    amount = 0.001 if case == "min_notional" else 0.01
    with pytest.raises(ccxt.ExchangeError, match=str(code)) as exc:
        client.create_order(PERP, kind, side, amount, limit, params)
    assert type(exc.value) in (
        ccxt.ExchangeError, ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.OrderNotFillable
    )  # fmt: skip


# --- admin over HTTP ------------------------------------------------------------------------


def _admin(sim: SimulatorServer, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - a local http URL
        sim.base_url + path, data=data, method="GET" if body is None else "POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def test_admin_http_sets_balances_clock_faults_and_reports_state(
    sim: SimulatorServer, client: Any
) -> None:
    _admin(
        sim,
        "/_sim/balances",
        {
            "spot": {"BTC": "0.25"},
            "positions": {"BTCUSDT": {"amount": "0.002", "entry_price": "50000"}},
        },
    )
    assert client.fetch_balance()["BTC"]["free"] == 0.25
    assert client.fetch_positions([PERP])[0]["contracts"] == 0.002
    _admin(sim, "/_sim/faults", {"endpoint": "GET /api/v3/time", "kind": "503_before"})
    assert _admin(sim, "/_sim/faults")[0]["kind"] == "503_before"
    with pytest.raises(ccxt.OperationFailed):
        client.fetch_time()
    _admin(sim, "/_sim/clock", {"offset_ms": -1500})
    with pytest.raises(ccxt.InvalidNonce):
        client.fetch_balance()
    state = _admin(sim, "/_sim/state")
    assert state["clock_offset_ms"] == -1500
    assert state["futures"]["positions"]["BTCUSDT"]["amount"] == "0.002"
