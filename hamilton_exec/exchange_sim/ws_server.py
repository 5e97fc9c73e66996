"""Binance's websocket dialect on the simulator's aiohttp app: market stream connections (raw
``/ws``, combined ``/stream?streams=``), live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS /
SET_PROPERTY / GET_PROPERTY, the per-connection limits (streams, incoming messages per second),
server pings, listenKey user data, the spot WS-API ``userDataStream.subscribe.signature``, and
the websocket faults of :mod:`hamilton_exec.exchange_sim.ws_faults`. URL layout: see
``docs/exchange-simulator.md``.
"""

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import WSMsgType, web

from hamilton_exec.exchange_sim.matching import Venue
from hamilton_exec.exchange_sim.ws_faults import USER_DATA_STREAM, WsFault, WsFaultSchedule
from hamilton_exec.exchange_sim.ws_streams import Stream, StreamHub, dumps, parse_stream
from hamilton_exec.exchange_sim.ws_user import ListenKeys, api_request
from trading_core.observability.logging import get_logger

_METHODS: Final = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_STRING_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


@dataclass
class WsLimits:
    """Per-connection limits, by venue (Binance's documented values by default)."""

    streams: dict[str, int] = field(default_factory=lambda: {"spot": 1024, "futures": 200})
    messages_per_s: dict[str, int] = field(default_factory=lambda: {"spot": 5, "futures": 10})
    ping_interval_s: dict[str, float] = field(
        default_factory=lambda: {"spot": 20.0, "futures": 180.0}
    )
    pong_timeout_s: dict[str, float] = field(
        default_factory=lambda: {"spot": 60.0, "futures": 600.0}
    )


class _Error(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


class Conn:
    """One websocket connection: its subscriptions, send queue and fault bookkeeping."""

    def __init__(
        self, ids: int, request: web.Request, ws: web.WebSocketResponse, venue: Venue,
        *, combined: bool, category: str | None, faults: WsFaultSchedule,
    ) -> None:  # fmt: skip
        self.id, self.request, self.ws, self.venue = ids, request, ws, venue
        self.path = request.path
        self.combined, self.category, self.faults = combined, category, faults
        self.streams: dict[str, Stream | None] = {}  # None: a listenKey
        self.user_key: str | None = None  # listenKey whose events this connection gets
        self.api_subscription: int | None = None  # WS-API userDataStream subscription id
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.incoming: deque[float] = deque()
        self.last_pong = time.monotonic()
        self.sent = 0
        self.closing = False

    def push(self, stream: str, payload: str) -> None:
        if self.closing:
            return
        text = f'{{"stream":"{stream}","data":{payload}}}' if self.combined else payload
        self.push_text(stream, text)

    def push_user(self, event: dict[str, Any]) -> None:
        if self.api_subscription is not None:
            text = dumps({"subscriptionId": self.api_subscription, "event": event})
        elif self.combined and self.user_key:
            text = dumps({"stream": self.user_key, "data": event})
        else:
            text = dumps(event)
        self.push_text(USER_DATA_STREAM, text)

    def push_text(self, stream: str, text: str) -> None:
        if self.faults.active:
            now = time.monotonic()
            for fault in self.faults.snapshot():
                if self._faulted(fault, stream, text, now):
                    return
        self.queue.put_nowait(text)

    def _faulted(self, fault: WsFault, stream: str, text: str, now: float) -> bool:
        """Whether ``fault`` took the message (held or dropped)."""
        if not fault.matches_path(self.path):
            return False
        if fault.kind == "disconnect":
            return self._count_down(fault, text)
        if not fault.matches_stream(stream):
            return False
        if fault.kind == "stall":
            return now < fault.created + fault.duration_s
        if fault.kind == "delay":
            held = now < fault.created + fault.delay_s
            if held:
                fault.held.setdefault(self.id, []).append(text)
            return held
        return fault.kind == "reorder" and self._reorder(fault, text)

    def _count_down(self, fault: WsFault, text: str) -> bool:
        left = fault.left.get(self.id)
        if left is None:
            return False
        fault.left[self.id] = left - 1
        if left - 1 > 0:
            return False
        del fault.left[self.id]
        self.queue.put_nowait(text)
        self.close_soon(fault.code, abort=fault.abort)
        return True

    def _reorder(self, fault: WsFault, text: str) -> bool:
        if self.id in fault.done:
            return False
        held = fault.held.setdefault(self.id, [])
        held.append(text)
        if len(held) >= fault.count:
            fault.done.add(self.id)
            for t in reversed(fault.held.pop(self.id)):
                self.queue.put_nowait(t)
        return True

    def close_soon(self, code: int = 1000, message: str = "", *, abort: bool = False) -> None:
        if self.closing:
            return
        self.closing = True
        if abort:
            transport = self.request.transport
            if transport is not None:
                transport.abort()
        self.queue.put_nowait(None)
        asyncio.get_running_loop().create_task(self.ws.close(code=code, message=message.encode()))


class WsServer:
    """Registers the websocket routes and owns the connections (see module doc)."""

    def __init__(
        self, hub: StreamHub, listen_keys: ListenKeys, faults: WsFaultSchedule,
        clock: Callable[[], int], *, api_key: str, api_secret: str, limits: WsLimits,
    ) -> None:  # fmt: skip
        self.hub, self.listen_keys, self.faults, self.clock = hub, listen_keys, faults, clock
        self.api_key, self.api_secret, self.limits = api_key, api_secret, limits
        self.conns: dict[int, Conn] = {}
        self._ids = itertools.count(1)
        self._log = get_logger(__name__)

    def add_routes(self, app: web.Application) -> None:
        add = app.router.add_get
        for prefix in ("", "/stream"):  # spot: Binance's paths, and under /stream (ccxt's url)
            add(prefix + "/ws", self._endpoint("spot", False, None))
            add(prefix + "/ws/{tail:.*}", self._endpoint("spot", False, None))
            add(prefix + "/stream", self._endpoint("spot", True, None))
        for cat in (None, "public", "market", "private"):
            prefix = "/fstream" + (f"/{cat}" if cat else "")
            add(prefix + "/ws", self._endpoint("futures", False, cat))
            add(prefix + "/ws/{tail:.*}", self._endpoint("futures", False, cat))
            add(prefix + "/stream", self._endpoint("futures", True, cat))
        add("/ws-api/v3", self._ws_api)

    # --- market / user stream connections ---------------------------------------------------

    def _endpoint(
        self, venue: Venue, combined: bool, category: str | None
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            names = [n for n in request.match_info.get("tail", "").split("/") if n]
            names += [n for n in request.query.get("streams", "").split("/") if n]
            now = self.clock()
            key = request.query.get("listenKey")
            if category == "private":
                lk = self.listen_keys.active(key, now)
                if lk is None or lk.venue != venue:
                    return web.json_response(
                        {"code": -1125, "msg": "This listenKey does not exist."}, status=400
                    )
                names.append(lk.key)
            if len(names) > self.limits.streams[venue]:
                return web.json_response({"code": 2, "msg": "Invalid request: too many streams"},
                                         status=400)  # fmt: skip
            ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
            await ws.prepare(request)
            conn = Conn(next(self._ids), request, ws, venue, combined=combined,
                        category=category, faults=self.faults)  # fmt: skip
            for name in names:  # unknown names in the URL are ignored, as Binance does
                self._attach(conn, name, now, strict=False)
            return await self._serve(conn, self._control)

        return handler

    def _attach(self, conn: Conn, name: str, now: int, *, strict: bool) -> None:
        lk = self.listen_keys.active(name, now)
        if lk is not None and lk.venue == conn.venue and conn.category in (None, "private"):
            conn.streams[name] = None
            conn.user_key = name
            return
        stream = parse_stream(name, conn.venue, self.hub.engine.market)
        ok = stream is not None and conn.category in (None, stream.category)
        if not ok or stream is None:
            if strict:
                raise _Error(2, "Invalid request: invalid stream")
            return
        conn.streams[name] = stream
        self.hub.subscribe(conn.venue, stream, conn)

    def _detach(self, conn: Conn, name: str) -> None:
        stream = conn.streams.pop(name, None)
        if stream is not None:
            self.hub.unsubscribe(conn.venue, name, conn)
        elif name == conn.user_key:
            conn.user_key = None

    async def _serve(
        self, conn: Conn, on_text: Callable[[Conn, str], Any]
    ) -> web.WebSocketResponse:
        self.conns[conn.id] = conn
        loop = asyncio.get_running_loop()
        writer = loop.create_task(self._writer(conn))
        pinger = loop.create_task(self._pinger(conn))
        limit = self.limits.messages_per_s[conn.venue]
        try:
            while not conn.ws.closed:
                msg = await conn.ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                                WSMsgType.ERROR):  # fmt: skip
                    break
                now = time.monotonic()
                conn.incoming.append(now)
                while conn.incoming and conn.incoming[0] <= now - 1.0:
                    conn.incoming.popleft()
                if len(conn.incoming) > limit:
                    self._log.info("sim_ws_rate_limited", path=conn.path, limit=limit)
                    conn.close_soon(1008, "Too many requests")
                    break
                if msg.type == WSMsgType.PING:
                    await conn.ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    conn.last_pong = now
                elif msg.type == WSMsgType.TEXT:
                    reply = on_text(conn, str(msg.data))
                    if reply is not None:
                        conn.queue.put_nowait(dumps(reply))
        finally:
            for name in list(conn.streams):
                self._detach(conn, name)
            self.conns.pop(conn.id, None)
            conn.closing = True
            conn.queue.put_nowait(None)
            await asyncio.gather(writer, return_exceptions=True)
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)
            if not conn.ws.closed:
                with contextlib.suppress(Exception):
                    await conn.ws.close()
        return conn.ws

    @staticmethod
    async def _writer(conn: Conn) -> None:
        while True:
            text = await conn.queue.get()
            if text is None or conn.ws.closed:
                return
            try:
                await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return
            conn.sent += 1

    async def _pinger(self, conn: Conn) -> None:
        interval = self.limits.ping_interval_s[conn.venue]
        timeout = self.limits.pong_timeout_s[conn.venue]
        while not conn.ws.closed:
            await asyncio.sleep(interval)
            if time.monotonic() - conn.last_pong > timeout:
                self._log.info("sim_ws_pong_timeout", path=conn.path)
                conn.close_soon(1008, "Pong timeout")
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.ping()

    def _control(self, conn: Conn, text: str) -> dict[str, Any] | None:
        """A live request's answer (``{"result": ..., "id": ...}`` or ``{"error": ...}``)."""
        req_id: Any = None
        try:
            try:
                req = json.loads(text)
            except ValueError as exc:
                line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
                raise _Error(
                    3, f"Invalid JSON: expected value at line {line} column {col}"
                ) from None
            if not isinstance(req, dict):
                raise _Error(2, "Invalid request: expected a JSON object")
            req_id = req.get("id")
            if not _valid_id(req_id):
                req_id = None
                raise _Error(2, "Invalid request: request ID must be an unsigned integer")
            method = req.get("method")
            if method is None:
                raise _Error(2, "Invalid request: missing field `method`")
            if method not in _METHODS:
                expected = ", ".join(f"`{m}`" for m in _METHODS)
                raise _Error(2, f"Invalid request: unknown variant `{method}`, expected one of "
                                f"{expected}")  # fmt: skip
            return {"result": self._method(conn, method, req.get("params")), "id": req_id}
        except _Error as err:
            return {"error": {"code": err.code, "msg": err.msg}, "id": req_id}

    def _method(self, conn: Conn, method: str, params: Any) -> Any:
        if method == "LIST_SUBSCRIPTIONS":
            return list(conn.streams)
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return _property(conn, method, params)
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise _Error(2, "Invalid request: missing field `params` (a list of stream names)")
        if method == "UNSUBSCRIBE":
            for name in params:
                self._detach(conn, name)
            return None
        now = self.clock()
        new = [p for p in dict.fromkeys(params) if p not in conn.streams]
        for name in new:  # all or nothing
            known = self.listen_keys.active(name, now) or parse_stream(
                name, conn.venue, self.hub.engine.market
            )
            if known is None:
                raise _Error(2, "Invalid request: invalid stream")
        limit = self.limits.streams[conn.venue]
        if len(conn.streams) + len(new) > limit:
            raise _Error(2, f"Invalid request: too many streams (at most {limit} a connection)")
        for name in new:
            self._attach(conn, name, now, strict=True)
        return None

    # --- WS-API (spot user data through signature subscription) ------------------------------

    async def _ws_api(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Conn(next(self._ids), request, ws, "spot", combined=False, category="api",
                    faults=self.faults)  # fmt: skip
        return await self._serve(conn, self._api_request)

    def _api_request(self, conn: Conn, text: str) -> dict[str, Any]:
        reply, subscribed = api_request(
            text, api_key=self.api_key, api_secret=self.api_secret, now=self.clock()
        )
        if subscribed is not None:
            conn.api_subscription = 0 if subscribed else None
        return reply

    # --- server-side events -------------------------------------------------------------------

    def push_user(self, venue: Venue, event: dict[str, Any]) -> None:
        for conn in list(self.conns.values()):
            if conn.venue != venue:
                continue
            if conn.api_subscription is not None or (
                conn.user_key is not None and self.listen_keys.keys.get(conn.user_key)
            ):
                conn.push_user(event)

    def expire_keys(self, now: int) -> None:
        for lk in self.listen_keys.expired(now):
            for conn in list(self.conns.values()):
                if conn.user_key == lk.key:
                    conn.push_user({"e": "listenKeyExpired", "E": now, "listenKey": lk.key})
                    self._detach(conn, lk.key)

    def apply_fault(self, fault: WsFault) -> None:
        """Act on a just-injected fault (in the loop): disconnects now or count down."""
        if fault.kind != "disconnect":
            return
        matching = [c for c in self.conns.values() if fault.matches_path(c.path)]
        self.faults.fired.append(("disconnect", fault.path or "*"))
        if fault.count == 0:
            for conn in matching:
                conn.close_soon(fault.code, abort=fault.abort)
            self.faults.remove(fault)
        else:
            fault.left = {c.id: fault.count for c in matching}

    def maintain_faults(self) -> None:
        """Release held messages of ended delay / reorder windows; drop ended faults."""
        now = time.monotonic()
        for fault in self.faults.snapshot():
            end = fault.created + (fault.delay_s if fault.kind == "delay" else fault.duration_s)
            if fault.kind == "disconnect":
                if not fault.left:
                    self.faults.remove(fault)
                continue
            if fault.kind == "depth_gap" or now < end:
                continue
            for conn_id, held in fault.held.items():
                conn = self.conns.get(conn_id)
                if conn is not None and not conn.closing:
                    for text in held:
                        conn.queue.put_nowait(text)
            fault.held.clear()
            self.faults.remove(fault)

    async def close_all(self) -> None:
        for conn in list(self.conns.values()):
            conn.close_soon(1001, "Server shutting down")


def _property(conn: Conn, method: str, params: Any) -> Any:
    if not isinstance(params, list) or not params or not isinstance(params[0], str):
        raise _Error(2, "Invalid request: property name must be a string")
    if params[0] != "combined":
        raise _Error(0, "Unknown property")
    if method == "GET_PROPERTY":
        return conn.combined
    if len(params) < 2 or not isinstance(params[1], bool):
        raise _Error(1, "Invalid value type: expected Boolean")
    conn.combined = params[1]
    return None


def _valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and bool(_STRING_ID.match(value))
