"""CcxtBroker with the REAL ccxt binance client against a local HTTP server speaking Binance's
spot REST dialect (exchangeInfo, order placement and lookup, open orders, account).

The server can accept an order and then answer too late (the client times out after the
exchange took the order), or fail with 503 before or after accepting. The broker must end
with exactly one order per decision on the exchange.
"""

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import SecretStr

from hamilton_exec.brokers import CcxtBroker, OrderRequest, client_order_id
from trading_core.config.models import ExchangeSection
from trading_core.errors import ExchangePermanentError
from trading_core.market.ccxt_source import build_ccxt_client

NOW_MS = 1_767_225_600_000
PRICE = 42_000.0


@dataclass
class FakeBinance:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: deque[str] = field(default_factory=deque)  # for POST /api/v3/order
    posts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def place(self, query: dict[str, str]) -> tuple[int, Any, float]:
        with self.lock:
            self.posts += 1
            fault = self.faults.popleft() if self.faults else None
            if fault == "503_before":
                return 503, {"code": -1001, "msg": "Internal error; please try again."}, 0.0
            cid = query["newClientOrderId"]
            if cid in self.orders:
                return 400, {"code": -2010, "msg": "Duplicate order sent."}, 0.0
            order = _order(len(self.orders) + 1, cid, query)
            self.orders[cid] = order
        if fault == "accept_then_timeout":
            return 200, order, 1.5
        if fault == "503_after":
            return 503, {"code": -1001, "msg": "Internal error; please try again."}, 0.0
        return 200, order, 0.0

    def lookup(self, query: dict[str, str]) -> tuple[int, Any, float]:
        order = self.orders.get(query.get("origClientOrderId", ""))
        if order is None:
            return 400, {"code": -2013, "msg": "Order does not exist."}, 0.0
        return 200, order, 0.0


def _order(order_id: int, cid: str, query: dict[str, str]) -> dict[str, Any]:
    qty = query["quantity"]
    return {
        "symbol": query["symbol"],
        "orderId": order_id,
        "orderListId": -1,
        "clientOrderId": cid,
        "transactTime": NOW_MS,
        "time": NOW_MS,
        "updateTime": NOW_MS,
        "price": "0.00000000",
        "origQty": qty,
        "executedQty": qty,
        "cummulativeQuoteQty": f"{float(qty) * PRICE:.8f}",
        "status": "FILLED",
        "timeInForce": "GTC",
        "type": "MARKET",
        "side": query["side"],
        "fills": [
            {
                "price": f"{PRICE:.8f}",
                "qty": qty,
                "commission": f"{float(qty) * PRICE * 0.0004:.8f}",
                "commissionAsset": "USDT",
            }
        ],
    }


def _exchange_info() -> dict[str, Any]:
    filters = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01",
            "maxPrice": "1000000.00",
            "tickSize": "0.01",
        },
        {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.0", "stepSize": "0.00001"},
    ]
    return {
        "timezone": "UTC",
        "serverTime": NOW_MS,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [
            {
                "symbol": "BTCUSDT",
                "status": "TRADING",
                "baseAsset": "BTC",
                "baseAssetPrecision": 8,
                "quoteAsset": "USDT",
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": filters,
                "permissions": [],
                "permissionSets": [["SPOT"]],
            }
        ],
    }


def _handler(state: FakeBinance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any, delay_s: float) -> None:
            if delay_s:
                time.sleep(delay_s)
            payload = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _query(self) -> dict[str, str]:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            merged = {**parse_qs(url.query), **parse_qs(body)}
            return {k: v[-1] for k, v in merged.items()}

        def do_GET(self) -> None:
            path = urlparse(self.path).path
            query = self._query()
            routes = {
                "/api/v3/exchangeInfo": lambda: (200, _exchange_info(), 0.0),
                "/api/v3/order": lambda: state.lookup(query),
                "/api/v3/openOrders": lambda: (200, [], 0.0),
                "/api/v3/account": lambda: (
                    200,
                    {
                        "balances": [
                            {"asset": "USDT", "free": "1000.0", "locked": "0.0"},
                            {"asset": "BTC", "free": "0.5", "locked": "0.0"},
                        ]
                    },
                    0.0,
                ),
            }
            route = routes.get(path)
            self._answer(*(route() if route else (404, {"code": -1, "msg": path}, 0.0)))

        def do_POST(self) -> None:
            if urlparse(self.path).path == "/api/v3/order":
                self._answer(*state.place(self._query()))
            else:
                self._answer(404, {"code": -1, "msg": self.path}, 0.0)

        def log_message(self, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def exchange() -> Iterator[tuple[FakeBinance, CcxtBroker]]:
    state = FakeBinance()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    section = ExchangeSection(
        api_key=SecretStr("test-key"),
        api_secret=SecretStr("test-secret"),
        timeout_ms=400,
        market_types=("spot",),
    )
    client = build_ccxt_client(section, market_types=("spot",))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    client.urls["api"] = {
        k: re.sub(r"^https://[^/]+", base, v) for k, v in client.urls["api"].items()
    }
    sleeps: list[float] = []
    try:
        yield state, CcxtBroker(client, max_retries=3, retry_backoff_s=0.25, sleep=sleeps.append)
    finally:
        server.shutdown()
        server.server_close()


def _request(side_qty: float = 0.01) -> OrderRequest:
    return OrderRequest(
        client_order_id=client_order_id("BTC/USDT", NOW_MS, "buy" if side_qty > 0 else "sell"),
        symbol="BTC/USDT",
        signed_qty=side_qty,
        reference_price=PRICE,
        price_adjust_bps=1.0,
        fee_bps=4.0,
        decided_at=datetime.fromtimestamp(NOW_MS / 1000, tz=UTC),
    )


def test_order_filled_with_its_deterministic_client_id(
    exchange: tuple[FakeBinance, CcxtBroker],
) -> None:
    state, broker = exchange
    report = broker.submit(_request())
    assert report.status == "filled" and report.fill is not None
    assert report.fill.qty == pytest.approx(0.01) and report.fill.price == PRICE
    assert list(state.orders) == [_request().client_order_id]


@pytest.mark.parametrize("fault", ["accept_then_timeout", "503_after"])
def test_uncertain_submit_after_acceptance_never_opens_a_second_position(
    exchange: tuple[FakeBinance, CcxtBroker], fault: str
) -> None:
    state, broker = exchange
    state.faults.append(fault)
    report = broker.submit(_request())
    assert report.status == "filled"
    assert len(state.orders) == 1 and state.posts == 1  # looked up, not re-sent


def test_temporary_error_before_acceptance_is_retried_once_accepted(
    exchange: tuple[FakeBinance, CcxtBroker],
) -> None:
    state, broker = exchange
    state.faults.extend(["503_before", "503_before"])
    report = broker.submit(_request())
    assert report.status == "filled"
    assert len(state.orders) == 1 and state.posts == 3


def test_resubmitting_the_same_decision_returns_the_existing_order(
    exchange: tuple[FakeBinance, CcxtBroker],
) -> None:
    state, broker = exchange
    first = broker.submit(_request())
    again = broker.submit(_request())  # e.g. after a crash between submit and state save
    assert again.exchange_order_id == first.exchange_order_id
    assert len(state.orders) == 1


def test_reconcile_reads_open_orders_and_balances(exchange: tuple[FakeBinance, CcxtBroker]) -> None:
    _, broker = exchange
    summary = broker.reconcile(["BTC/USDT"])
    assert summary["balances"]["BTC"] == pytest.approx(0.5)
    assert summary["open_orders"] == {}


def test_permanent_error_is_not_retried(exchange: tuple[FakeBinance, CcxtBroker]) -> None:
    state, broker = exchange
    unknown = OrderRequest("ham-unknown", "NOPE/USDT", 0.01, PRICE, 1.0, 4.0, _request().decided_at)
    with pytest.raises(ExchangePermanentError, match="NOPE/USDT"):
        broker.submit(unknown)  # ccxt's BadSymbol: no request reaches the exchange
    assert state.posts == 0
