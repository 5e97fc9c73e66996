"""The Binance REST dialect over aiohttp: routes, API-key / signature / timestamp checks, request
weights with ``x-mbx-used-weight-1m`` and 429s, error payloads and injected faults.

Signed endpoints are checked as Binance does, in this order: ``X-MBX-APIKEY`` (missing: 401
-2014, wrong: 401 -2015), ``timestamp`` present (-1102), ``recvWindow`` at most 60000 (-1131),
``signature`` = HMAC-SHA256 of the query string followed by the body, without the signature
itself (-1022), then the time: processed only if ``timestamp < serverTime + 1000`` and
``serverTime - timestamp <= recvWindow`` (default 5000), else -1021.
"""

import asyncio
import hashlib
import hmac
import threading
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qsl

from aiohttp import web

from hamilton_exec.exchange_sim import binance_futures as fut
from hamilton_exec.exchange_sim import binance_market as m
from hamilton_exec.exchange_sim import binance_routes as r
from hamilton_exec.exchange_sim import errors
from hamilton_exec.exchange_sim.binance_format import FUTURES_WEIGHT_LIMIT, SPOT_WEIGHT_LIMIT
from hamilton_exec.exchange_sim.binance_routes import Params, Route, const
from hamilton_exec.exchange_sim.errors import SimError
from hamilton_exec.exchange_sim.faults import Fault, FaultSchedule
from hamilton_exec.exchange_sim.matching import Engine
from trading_core.observability.logging import get_logger

DEFAULT_RECV_WINDOW: Final = 5000
MAX_RECV_WINDOW: Final = 60_000


def _by_symbol(with_symbol: int, without: int) -> Callable[[Params], int]:
    return lambda p: with_symbol if p.get("symbol") else without


def _by_limit(table: tuple[tuple[int, int], ...], default_limit: int) -> Callable[[Params], int]:
    def weight(p: Params) -> int:
        limit = int(p["limit"]) if p.get("limit", "").isdigit() else default_limit
        return next((w for bound, w in table if limit <= bound), table[-1][1])

    return weight


SPOT_ROUTES: Final[dict[tuple[str, str], Route]] = {
    ("GET", "/api/v3/ping"): Route(m.ping),
    ("GET", "/api/v3/time"): Route(m.server_time),
    ("GET", "/api/v3/exchangeInfo"): Route(m.exchange_info("spot"), weight=const(20)),
    ("GET", "/api/v3/klines"): Route(m.klines("spot"), weight=const(2)),
    ("GET", "/api/v3/uiKlines"): Route(m.klines("spot"), weight=const(2)),
    ("GET", "/api/v3/depth"): Route(
        m.depth("spot"), weight=_by_limit(((100, 5), (500, 25), (1000, 50), (5000, 250)), 100)
    ),
    ("GET", "/api/v3/ticker/24hr"): Route(m.ticker_24hr("spot"), weight=_by_symbol(2, 80)),
    ("GET", "/api/v3/ticker/bookTicker"): Route(m.book_ticker("spot"), weight=_by_symbol(2, 4)),
    ("GET", "/api/v3/ticker/price"): Route(m.ticker_price("spot"), weight=_by_symbol(2, 4)),
    ("POST", "/api/v3/order"): Route(r.spot_new_order, signed=True, places_order=True),
    ("POST", "/api/v3/order/test"): Route(r.spot_test_order, signed=True),
    ("GET", "/api/v3/order"): Route(r.spot_get_order, signed=True, weight=const(4)),
    ("DELETE", "/api/v3/order"): Route(r.spot_cancel_order, signed=True),
    ("GET", "/api/v3/openOrders"): Route(r.spot_open_orders, True, _by_symbol(6, 80)),
    ("DELETE", "/api/v3/openOrders"): Route(r.spot_cancel_all, signed=True),
    ("GET", "/api/v3/allOrders"): Route(r.all_orders("spot"), True, const(20)),
    ("GET", "/api/v3/account"): Route(r.spot_account, signed=True, weight=const(20)),
    ("GET", "/api/v3/myTrades"): Route(r.trades("spot"), signed=True, weight=const(20)),
}
FUTURES_ROUTES: Final[dict[tuple[str, str], Route]] = {
    ("GET", "/fapi/v1/ping"): Route(m.ping),
    ("GET", "/fapi/v1/time"): Route(m.server_time),
    ("GET", "/fapi/v1/exchangeInfo"): Route(m.exchange_info("futures")),
    ("GET", "/fapi/v1/klines"): Route(
        m.klines("futures"), weight=_by_limit(((99, 1), (499, 2), (1000, 5), (1500, 10)), 500)
    ),
    ("GET", "/fapi/v1/depth"): Route(
        m.depth("futures"), weight=_by_limit(((50, 2), (100, 5), (500, 10), (1000, 20)), 500)
    ),
    ("GET", "/fapi/v1/ticker/24hr"): Route(m.ticker_24hr("futures"), weight=_by_symbol(1, 40)),
    ("GET", "/fapi/v1/ticker/bookTicker"): Route(m.book_ticker("futures"), weight=_by_symbol(2, 5)),
    ("GET", "/fapi/v1/ticker/price"): Route(m.ticker_price("futures"), weight=_by_symbol(1, 2)),
    ("GET", "/fapi/v2/ticker/price"): Route(m.ticker_price("futures"), weight=_by_symbol(1, 2)),
    ("GET", "/fapi/v1/premiumIndex"): Route(m.premium_index, weight=_by_symbol(1, 10)),
    ("GET", "/fapi/v1/fundingRate"): Route(m.funding_rate),
    ("POST", "/fapi/v1/order"): Route(fut.new_order, True, const(0), places_order=True),
    ("GET", "/fapi/v1/order"): Route(fut.get_order, signed=True),
    ("DELETE", "/fapi/v1/order"): Route(fut.cancel_order, signed=True),
    ("GET", "/fapi/v1/openOrders"): Route(fut.open_orders, True, _by_symbol(1, 40)),
    ("DELETE", "/fapi/v1/allOpenOrders"): Route(fut.cancel_all, signed=True),
    ("GET", "/fapi/v1/allOrders"): Route(r.all_orders("futures"), True, const(5)),
    ("GET", "/fapi/v1/userTrades"): Route(r.trades("futures"), signed=True, weight=const(5)),
    ("GET", "/fapi/v2/account"): Route(fut.account, signed=True, weight=const(5)),
    ("GET", "/fapi/v3/account"): Route(fut.account, signed=True, weight=const(5)),
    ("GET", "/fapi/v2/balance"): Route(fut.balance, signed=True, weight=const(5)),
    ("GET", "/fapi/v3/balance"): Route(fut.balance, signed=True, weight=const(5)),
    ("GET", "/fapi/v2/positionRisk"): Route(fut.position_risk_v2, True, const(5)),
    ("GET", "/fapi/v3/positionRisk"): Route(fut.position_risk_v3, True, const(5)),
    ("GET", "/fapi/v1/leverageBracket"): Route(fut.leverage_bracket, signed=True),
    ("POST", "/fapi/v1/leverage"): Route(fut.set_leverage, signed=True),
    ("GET", "/fapi/v1/positionSide/dual"): Route(fut.position_mode, True, const(30)),
}
ROUTES: Final = {**SPOT_ROUTES, **FUTURES_ROUTES}


def split_params(raw_query: str, raw_body: str) -> Params:
    """Query and form body merged (the query wins, as on Binance)."""
    merged = dict(parse_qsl(raw_body, keep_blank_values=True))
    merged.update(parse_qsl(raw_query, keep_blank_values=True))
    return merged


def _unsigned(raw: str) -> str:
    return "&".join(part for part in raw.split("&") if part and not part.startswith("signature="))


def check_api_key(api_key_header: str | None, api_key: str) -> None:
    if not api_key_header:
        raise SimError(-2014, "API-key format invalid.", 401)
    if not hmac.compare_digest(api_key_header, api_key):
        raise SimError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def authenticate(
    api_key_header: str | None,
    raw_query: str,
    raw_body: str,
    params: Params,
    *,
    api_key: str,
    api_secret: str,
    now: int,
) -> None:
    """Raise the SimError Binance answers for this signed request, if any (see module doc)."""
    check_api_key(api_key_header, api_key)
    timestamp = r.integer(params, "timestamp")
    if timestamp is None:
        raise errors.mandatory("timestamp")
    window = r.integer(params, "recvWindow")
    window = DEFAULT_RECV_WINDOW if window is None else window
    if window > MAX_RECV_WINDOW or window <= 0:
        raise SimError(-1131, "recvWindow must be less than 60000")
    signature = params.get("signature")
    if not signature:
        raise errors.mandatory("signature")
    payload = _unsigned(raw_query) + _unsigned(raw_body)
    expected = hmac.new(api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature.lower(), expected):
        raise SimError(-1022, "Signature for this request is not valid.")
    if timestamp >= now + 1000:
        raise SimError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now - timestamp > window:
        raise SimError(-1021, "Timestamp for this request is outside of the recvWindow.")


class WeightMeter:
    """Request weight per fixed clock minute, per API (spot / USD-M), and order counts."""

    def __init__(self, limits: dict[str, int]) -> None:
        self.limits = limits
        self._used: dict[str, tuple[int, int]] = {}
        self._orders: dict[str, tuple[int, int]] = {}

    def add(self, api: str, weight: int, now: int) -> tuple[int, bool]:
        """Count ``weight``; returns (weight used this minute, over the limit)."""
        minute = now // 60_000
        start, used = self._used.get(api, (minute, 0))
        used = (used if start == minute else 0) + weight
        self._used[api] = (minute, used)
        return used, used > self.limits[api]

    def add_order(self, api: str, now: int, window_ms: int) -> int:
        bucket = now // window_ms
        start, count = self._orders.get(api, (bucket, 0))
        count = (count if start == bucket else 0) + 1
        self._orders[api] = (bucket, count)
        return count


class BinanceHttp:
    """The aiohttp handler for ``/api/*`` and ``/fapi/*`` over ``engine`` (guarded by ``lock``)."""

    def __init__(
        self,
        engine: Engine,
        lock: threading.RLock,
        clock: Callable[[], int],
        faults: FaultSchedule,
        *,
        api_key: str,
        api_secret: str,
        weight_limits: dict[str, int] | None = None,
    ) -> None:
        self.engine, self.lock, self.clock, self.faults = engine, lock, clock, faults
        self.api_key, self.api_secret = api_key, api_secret
        self.meter = WeightMeter(
            weight_limits or {"spot": SPOT_WEIGHT_LIMIT, "futures": FUTURES_WEIGHT_LIMIT}
        )
        self.routes: dict[tuple[str, str], Route] = dict(ROUTES)  # the server adds/overrides some
        self._log = get_logger(__name__)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{tail:.*}", self.handle)
        app.router.add_route("*", "/fapi/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        route = self.routes.get((method, path))
        if route is None:
            return web.Response(status=404, text="<html><body><h1>404 Not Found</h1></body></html>",
                                content_type="text/html")  # fmt: skip
        raw_query, raw_body = request.rel_url.raw_query_string, await request.text()
        params = split_params(raw_query, raw_body)
        api = "futures" if path.startswith("/fapi/") else "spot"
        with self.lock:
            now = self.clock()
            used, over = self.meter.add(api, route.weight(params), now)
        headers = {"x-mbx-used-weight-1m": str(used)}
        if api == "spot":
            headers["x-mbx-used-weight"] = str(used)
        if over:
            retry = 60 - (now // 1000) % 60
            limit = self.meter.limits[api]
            msg = (
                f"Too much request weight used; current limit is {limit} request weight per 1 "
                "MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."
            )
            return _json(429, {"code": -1003, "msg": msg}, {**headers, "Retry-After": str(retry)})
        fault = self.faults.take(method, path)
        if fault is not None:
            self._log.info("sim_fault", endpoint=f"{method} {path}", kind=fault.kind)
        if fault is not None and not fault.after:
            return await self._before(request, fault, headers)
        status, body = self._process(request, route, params, raw_query, raw_body, api, headers)
        if fault is not None:
            return await self._after(request, fault, status, body, headers)
        return _json(status, body, headers)

    def _process(
        self,
        request: web.Request,
        route: Route,
        params: Params,
        raw_query: str,
        raw_body: str,
        api: str,
        headers: dict[str, str],
    ) -> tuple[int, Any]:
        try:
            with self.lock:
                now = self.clock()
                if route.api_key_only:
                    check_api_key(request.headers.get("X-MBX-APIKEY"), self.api_key)
                if route.signed:
                    authenticate(
                        request.headers.get("X-MBX-APIKEY"), raw_query, raw_body, params,
                        api_key=self.api_key, api_secret=self.api_secret, now=now,
                    )  # fmt: skip
                if route.places_order:
                    if api == "spot":
                        headers["x-mbx-order-count-10s"] = str(
                            self.meter.add_order(api, now, 10_000)
                        )
                    else:
                        headers["x-mbx-order-count-1m"] = str(
                            self.meter.add_order(api, now, 60_000)
                        )
                self.engine.advance(now)
                return 200, route.handler(self.engine, params, now)
        except SimError as exc:
            self._log.debug("sim_rejected", endpoint=f"{request.method} {request.path}",
                            code=exc.code, msg=exc.msg)  # fmt: skip
            return exc.status, exc.payload()

    async def _before(
        self, request: web.Request, fault: Fault, headers: dict[str, str]
    ) -> web.StreamResponse:
        kind = fault.kind
        if kind == "timeout_before":
            await asyncio.sleep(fault.delay_s)
        if kind == "reset_before":
            return await self._reset(request)
        if kind == "502_before":
            html = "<html><head><title>502 Bad Gateway</title></head><body></body></html>"
            return web.Response(status=502, text=html, content_type="text/html", headers=headers)
        if kind in ("429", "418"):
            headers = {**headers, "Retry-After": str(fault.retry_after_s)}
        if kind == "not_found" and request.method == "DELETE":
            return _json(400, errors.unknown_order().payload(), headers)
        status, code, msg = _CANNED[kind]
        return _json(status, {"code": code, "msg": msg}, headers)

    async def _after(
        self, request: web.Request, fault: Fault, status: int, body: Any, headers: dict[str, str]
    ) -> web.StreamResponse:
        if fault.kind == "503_after":
            return _json(503, errors.internal().payload(), headers)
        if fault.kind == "accept_then_timeout":
            await asyncio.sleep(fault.delay_s)
            return _json(status, body, headers)
        return await self._reset(request)  # reset_after

    @staticmethod
    async def _reset(request: web.Request) -> web.StreamResponse:
        """Close the connection without an answer (the client sees it drop)."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError


_CANNED: Final[dict[str, tuple[int, int, str]]] = {
    "503_before": (503, -1001, errors.INTERNAL_ERROR),
    "500_before": (500, -1000, "An unknown error occured while processing the request."),
    "429": (429, -1003, "Too many requests; current limit of IP is exceeded."),
    "418": (
        418,
        -1003,
        "Way too much request weight used; IP banned. Please use WebSocket Streams.",
    ),
    "not_found": (400, -2013, "Order does not exist."),
    "timeout_before": (
        503,
        -1007,
        "Timeout waiting for response from backend server. Send status unknown; execution status "
        "unknown.",
    ),
}


def _json(status: int, body: Any, headers: dict[str, str]) -> web.Response:
    return web.json_response(body, status=status, headers=headers)
