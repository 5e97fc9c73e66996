"""``SimulatorServer``: the Binance simulator on 127.0.0.1, its aiohttp loop in a background thread.

Admin endpoints (no auth; they are not Binance's):

* ``GET /_sim/state`` -- server time, balances, wallet, positions, orders, orders per client id
* ``POST /_sim/faults`` ``{"endpoint": "POST /api/v3/order", "kind": "503_after", "count": 1,
  "delay_s": 2.0, "retry_after_s": 1}``; ``GET /_sim/faults`` (pending); ``DELETE /_sim/faults``
* ``POST /_sim/clock`` ``{"offset_ms": -3000}`` -- server clock = local clock + offset
* ``POST /_sim/balances`` ``{"spot": {"BTC": "0.5"}, "futures": {"USDT": "10000"},
  "positions": {"BTCUSDT": {"amount": "-0.01", "entry_price": "60000"}}}``
* ``POST /_sim/price`` ``{"symbol": "BTCUSDT", "price": 61000}`` (``null``: synthetic again)
* ``POST /_sim/ws_faults`` ``{"kind": "disconnect", "path": "/fstream", "count": 0}`` (the keyword
  arguments of :meth:`WsFaultSchedule.inject`); ``GET`` (active); ``DELETE`` (clear)

Websockets (same port): spot ``/ws``, ``/stream`` and the same under ``/stream/...``; USD-M
``/fstream/{,public/,market/,private/}ws|stream``; spot WS-API ``/ws-api/v3``. See
:mod:`hamilton_exec.exchange_sim.ws_server`.
"""

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from hamilton_exec.exchange_sim.accounts import Position
from hamilton_exec.exchange_sim.binance_format import futures_order, spot_order
from hamilton_exec.exchange_sim.binance_http import BinanceHttp
from hamilton_exec.exchange_sim.binance_routes import Route, const
from hamilton_exec.exchange_sim.errors import SimError
from hamilton_exec.exchange_sim.faults import FaultSchedule
from hamilton_exec.exchange_sim.market import SymbolSpec, SyntheticMarket, default_spec
from hamilton_exec.exchange_sim.matching import Engine, EngineConfig
from hamilton_exec.exchange_sim.ws_faults import WsFault, WsFaultSchedule
from hamilton_exec.exchange_sim.ws_server import WsLimits, WsServer
from hamilton_exec.exchange_sim.ws_streams import StreamHub
from hamilton_exec.exchange_sim.ws_user import ListenKeys, OrderTracker
from trading_core.observability.logging import get_logger


class SimulatorServer:
    """A local Binance (spot ``/api/v3`` + USD-M ``/fapi``) for tests and by-hand use.

    ``symbols``: ``"BTC/USDT"`` strings (a default spec each) or :class:`SymbolSpec`.
    ``balances``: spot balances, e.g. ``{"USDT": 100000}``; ``futures_balances``: the USD-M
    wallet (defaults to the spot quote balances). ``port=0`` picks a free port.

    ``time_scale``: server time runs that many times faster than the wall clock from the start
    (REST, streams, orders alike; 60: a 1m bar closes every second). ``stream_interval_s``: how
    often (wall seconds) the forming kline is pushed; the final one goes out on the first tick
    after the close. ``book_ticker_interval_s``: bookTicker pushes at most that often (0: every
    tick, only when the best bid/ask changed). ``depth_levels``: levels a side of the streamed
    book and the REST depth snapshot (default ``config.levels``). ``ws_limits``: per-connection
    stream / message-rate / ping limits (:class:`WsLimits`, Binance's values by default)."""

    def __init__(
        self,
        *,
        symbols: Iterable[str | SymbolSpec] = ("BTC/USDT", "ETH/USDT"),
        balances: Mapping[str, float | str | Decimal] | None = None,
        futures_balances: Mapping[str, float | str | Decimal] | None = None,
        api_key: str = "sim-key",
        api_secret: str = "sim-secret",  # noqa: S107 - a public default for local use
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        clock_offset_ms: int = 0,
        config: EngineConfig | None = None,
        tick_interval_s: float = 0.05,
        weight_limits: dict[str, int] | None = None,
        time_scale: float = 1.0,
        stream_interval_s: float = 1.0,
        book_ticker_interval_s: float = 0.0,
        depth_levels: int | None = None,
        ws_limits: WsLimits | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        specs = [s if isinstance(s, SymbolSpec) else default_spec(s) for s in symbols]
        self.market = SyntheticMarket(specs, seed=seed)
        self.engine = Engine(self.market, config)
        self.lock = threading.RLock()
        self.faults = FaultSchedule()
        self.host, self.port = host, port
        self.tick_interval_s = tick_interval_s
        self.time_scale = float(time_scale)
        self._t0_ms = time.time() * 1000
        self._offset_ms = clock_offset_ms
        spot = {"USDT": 100_000} if balances is None else balances
        self.set_balances(spot=spot, futures=futures_balances or {
            s.quote: spot.get(s.quote, 0) for s in specs
        })  # fmt: skip
        self.http = BinanceHttp(
            self.engine, self.lock, self.server_time_ms, self.faults,
            api_key=api_key, api_secret=api_secret, weight_limits=weight_limits,
        )  # fmt: skip
        self.ws_faults = WsFaultSchedule()
        self.listen_keys = ListenKeys()
        self.hub = StreamHub(
            self.engine, self.ws_faults, time_scale=self.time_scale,
            kline_interval_s=stream_interval_s, book_ticker_interval_s=book_ticker_interval_s,
            depth_levels=depth_levels or self.engine.config.levels,
        )  # fmt: skip
        self.ws = WsServer(
            self.hub, self.listen_keys, self.ws_faults, self.server_time_ms,
            api_key=api_key, api_secret=api_secret, limits=ws_limits or WsLimits(),
        )  # fmt: skip
        self._orders = OrderTracker(self.engine)
        self._add_stream_routes()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._log = get_logger(__name__)
        self.base_url = ""
        self.ws_base_url = ""

    def _add_stream_routes(self) -> None:
        """listenKey REST endpoints, and depth snapshots consistent with the diff streams."""
        routes = self.http.routes
        for path, venue, weight in (
            ("/api/v3/userDataStream", "spot", 2), ("/fapi/v1/listenKey", "futures", 1)
        ):  # fmt: skip
            handlers = (self.listen_keys.spot_handlers() if venue == "spot"
                        else self.listen_keys.futures_handlers())  # fmt: skip
            for method, handler in handlers.items():
                routes[(method, path)] = Route(handler, weight=const(weight), api_key_only=True)
        spot_depth, fut_depth = ("GET", "/api/v3/depth"), ("GET", "/fapi/v1/depth")
        routes[spot_depth] = Route(self.hub.depth_handler("spot"), weight=routes[spot_depth].weight)
        routes[fut_depth] = Route(
            self.hub.depth_handler("futures"), weight=routes[fut_depth].weight
        )

    # --- clock and state ------------------------------------------------------------------

    def server_time_ms(self) -> int:
        """The server clock: ``start + (wall - start) * time_scale + offset`` in ms; consumers
        of an accelerated simulator should take their time from here."""
        wall = time.time() * 1000
        return int(self._t0_ms + (wall - self._t0_ms) * self.time_scale) + self._offset_ms

    def wall_time_ms(self, server_ms: int) -> float:
        """The wall clock (``time.time()`` ms) at which the server clock reads ``server_ms``."""
        return self._t0_ms + (server_ms - self._offset_ms - self._t0_ms) / self.time_scale

    def set_clock_offset_ms(self, offset_ms: int) -> None:
        """Server clock = local clock + ``offset_ms`` (negative: the server is behind)."""
        self._offset_ms = int(offset_ms)

    def set_balances(
        self,
        *,
        spot: Mapping[str, float | str | Decimal] | None = None,
        futures: Mapping[str, float | str | Decimal] | None = None,
        positions: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Set spot free balances (locked untouched), USD-M wallet balances and positions
        (``{"BTCUSDT": {"amount": "0.01", "entry_price": "60000"}}``)."""
        with self.lock:
            now = self.server_time_ms()
            for asset, amount in (spot or {}).items():
                self.engine.spot.get(asset).free = Decimal(str(amount))
            for asset, amount in (futures or {}).items():
                self.engine.futures.wallet[asset] = Decimal(str(amount))
            for sym, pos in (positions or {}).items():
                self.engine.spec(sym)
                self.engine.futures.positions[sym] = Position(
                    Decimal(str(pos.get("amount", 0))), Decimal(str(pos.get("entry_price", 0))), now
                )
            self.engine.spot.update_ms = self.engine.futures.update_ms = now

    def set_price(self, symbol: str, price: float | None) -> None:
        """Pin the mid of ``symbol`` (a Binance id, e.g. BTCUSDT) from now on; None: unpin."""
        with self.lock:
            self.engine.spec(symbol)
            now = self.server_time_ms()
            self.market.pin(symbol, price, now)
            self.engine.advance(now)

    def state(self) -> dict[str, Any]:
        with self.lock:
            e, now = self.engine, self.server_time_ms()
            return {
                "server_time": now,
                "clock_offset_ms": self._offset_ms,
                "spot": {
                    "balances": e.spot.to_dict(),
                    "orders": [spot_order(o) for o in e.orders["spot"].values()],
                },
                "futures": {
                    "wallet": {a: str(v) for a, v in sorted(e.futures.wallet.items())},
                    "positions": {
                        s: {"amount": str(p.amount), "entry_price": str(p.entry_price)}
                        for s, p in sorted(e.futures.positions.items())
                        if p.amount
                    },
                    "orders": [futures_order(o) for o in e.orders["futures"].values()],
                },
                "orders_per_client_id": dict(e.orders_per_client_id),
            }

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving; returns the base URL (``http://127.0.0.1:<port>``)."""
        if self._thread is not None:
            return self.base_url
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="exchange-sim", daemon=True
        )
        self._thread.start()
        ready.wait(timeout=30)
        if failure:
            self._thread = None
            raise RuntimeError("exchange simulator failed to start") from failure[0]
        self._log.info("exchange_sim_started", base_url=self.base_url)
        return self.base_url

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = self._loop = None
        self._log.info("exchange_sim_stopped", base_url=self.base_url)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except Exception as exc:  # noqa: BLE001 - handed to start() to raise
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _startup(self) -> None:
        app = web.Application(middlewares=[_admin_errors])
        self.http.add_routes(app)
        self.ws.add_routes(app)
        self._add_admin_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.port = port
        self.base_url = f"http://{host}:{port}"
        self.ws_base_url = f"ws://{host}:{port}"
        loop = asyncio.get_running_loop()

        def on_inject(fault: WsFault) -> None:
            loop.call_soon_threadsafe(self.ws.apply_fault, fault)

        self.ws_faults.on_inject = on_inject
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _shutdown(self) -> None:
        self.ws_faults.on_inject = None
        await self.ws.close_all()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._runner is not None:
            await self._runner.cleanup()
        # handlers still holding a delayed answer (accept_then_timeout, timeout_before)
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _tick(self) -> None:
        """Resting orders fill as the price moves even when nobody asks; then the streams:
        market data, user data for what changed in the orders, listenKey expiry, ws faults."""
        while True:
            await asyncio.sleep(self._next_tick_s())
            try:
                with self.lock:
                    now = self.server_time_ms()
                    self.engine.advance(now)
                    self.hub.publish(now)
                    events = self._orders.poll(now)
                for venue, venue_events in events.items():
                    for event in venue_events:
                        self.ws.push_user(venue, event)
                self.ws.expire_keys(now)
                self.ws.maintain_faults()
            except Exception:  # noqa: BLE001 - the ticker must survive a bad tick
                self._log.exception("sim_tick_failed")

    def _next_tick_s(self) -> float:
        """``tick_interval_s``, or less to wake right after the next kline close."""
        close = self.hub.next_close_ms()
        if close is None:
            return self.tick_interval_s
        until = (close - self.server_time_ms()) / self.time_scale / 1000
        return max(0.001, min(self.tick_interval_s, until + 0.001))

    # --- admin HTTP -----------------------------------------------------------------------

    def _add_admin_routes(self, app: web.Application) -> None:
        app.router.add_get("/_sim/state", self._state)
        app.router.add_get("/_sim/faults", self._faults_get)
        app.router.add_post("/_sim/faults", self._faults_post)
        app.router.add_delete("/_sim/faults", self._faults_delete)
        app.router.add_post("/_sim/clock", self._clock)
        app.router.add_post("/_sim/balances", self._balances)
        app.router.add_post("/_sim/price", self._price)
        app.router.add_get("/_sim/ws_faults", self._ws_faults_get)
        app.router.add_post("/_sim/ws_faults", self._ws_faults_post)
        app.router.add_delete("/_sim/ws_faults", self._ws_faults_delete)

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _faults_get(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.pending())

    async def _faults_post(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            fault = self.faults.inject(
                str(body["endpoint"]),
                str(body["kind"]),
                count=int(body.get("count", 1)),
                delay_s=None if body.get("delay_s") is None else float(body["delay_s"]),
                retry_after_s=int(body.get("retry_after_s", 1)),
            )
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"endpoint": fault.endpoint, "kind": fault.kind})

    async def _faults_delete(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.json_response({})

    async def _ws_faults_get(self, request: web.Request) -> web.Response:
        return web.json_response(self.ws_faults.pending())

    async def _ws_faults_post(self, request: web.Request) -> web.Response:
        body = dict(await request.json())
        kind = str(body.pop("kind"))
        allowed = {"path", "stream", "count", "delay_s", "duration_s", "symbol", "venue",
                   "abort", "code"}  # fmt: skip
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown ws fault fields {sorted(unknown)}")
        fault = self.ws_faults.inject(kind, **body)
        return web.json_response(fault.public())

    async def _ws_faults_delete(self, request: web.Request) -> web.Response:
        self.ws_faults.clear()
        return web.json_response({})

    async def _clock(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.set_clock_offset_ms(int(body["offset_ms"]))
        return web.json_response(
            {"offset_ms": self._offset_ms, "server_time": self.server_time_ms()}
        )

    async def _balances(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.set_balances(
            spot=body.get("spot"), futures=body.get("futures"), positions=body.get("positions")
        )
        return web.json_response(self.state())

    async def _price(self, request: web.Request) -> web.Response:
        body = await request.json()
        price = body.get("price")
        self.set_price(str(body["symbol"]), None if price is None else float(price))
        return web.json_response({"symbol": body["symbol"], "price": price})


@web.middleware
async def _admin_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bad admin requests answer 400 with the reason (not a 500)."""
    if not request.path.startswith("/_sim/"):
        return await handler(request)
    try:
        return await handler(request)
    except (KeyError, ValueError, TypeError, InvalidOperation, SimError) as exc:
        return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
