"""User data streams: listenKeys (``/api/v3/userDataStream``, ``/fapi/v1/listenKey``), the WS-API
``userDataStream.subscribe.signature`` check, and the events Binance pushes when an order changes
(spot ``executionReport`` + ``outboundAccountPosition``, USD-M ``ORDER_TRADE_UPDATE`` +
``ACCOUNT_UPDATE``), found by comparing the engine's orders between ticks."""

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from hamilton_exec.exchange_sim import errors
from hamilton_exec.exchange_sim.binance_format import plain, s8
from hamilton_exec.exchange_sim.binance_http import check_api_key
from hamilton_exec.exchange_sim.binance_routes import Params
from hamilton_exec.exchange_sim.errors import SimError
from hamilton_exec.exchange_sim.matching import Engine, Fill, Order, Venue

LISTEN_KEY_VALIDITY_MS: Final = 60 * 60_000
Event = dict[str, Any]


def _no_listen_key() -> SimError:
    return SimError(-1125, "This listenKey does not exist.")


@dataclass
class ListenKey:
    key: str
    venue: Venue
    expires_ms: int


class ListenKeys:
    """Active listenKeys, one per venue as on Binance (a second POST returns the same key and
    extends it); each lives 60 minutes of server time unless kept alive with PUT."""

    def __init__(self) -> None:
        self.keys: dict[str, ListenKey] = {}

    def active(self, key: str | None, now: int) -> ListenKey | None:
        lk = self.keys.get(key or "")
        return lk if lk is not None and lk.expires_ms > now else None

    def expired(self, now: int) -> list[ListenKey]:
        gone = [lk for lk in self.keys.values() if lk.expires_ms <= now]
        for lk in gone:
            del self.keys[lk.key]
        return gone

    def create(self, venue: Venue, now: int) -> str:
        for lk in self.keys.values():
            if lk.venue == venue and lk.expires_ms > now:
                lk.expires_ms = now + LISTEN_KEY_VALIDITY_MS
                return lk.key
        key = secrets.token_urlsafe(48)[:64]
        self.keys[key] = ListenKey(key, venue, now + LISTEN_KEY_VALIDITY_MS)
        return key

    def keep_alive(self, venue: Venue, key: str | None, now: int) -> str:
        if key is None:  # USD-M: the account's key
            key = next((k.key for k in self.keys.values() if k.venue == venue), None)
        lk = self.active(key, now)
        if lk is None or lk.venue != venue:
            raise _no_listen_key()
        lk.expires_ms = now + LISTEN_KEY_VALIDITY_MS
        return lk.key

    def delete(self, venue: Venue, key: str | None) -> None:
        if key is None:
            key = next((k.key for k in self.keys.values() if k.venue == venue), None)
        lk = self.keys.get(key or "")
        if lk is None or lk.venue != venue:
            raise _no_listen_key()
        del self.keys[lk.key]

    # REST handlers ``(engine, params, now)`` for BinanceHttp routes (API key checked there)

    def spot_handlers(self) -> dict[str, Callable[[Engine, Params, int], Any]]:
        def post(engine: Engine, p: Params, now: int) -> Any:
            return {"listenKey": self.create("spot", now)}

        def put(engine: Engine, p: Params, now: int) -> Any:
            self.keep_alive("spot", _required_key(p), now)
            return {}

        def delete(engine: Engine, p: Params, now: int) -> Any:
            self.delete("spot", _required_key(p))
            return {}

        return {"POST": post, "PUT": put, "DELETE": delete}

    def futures_handlers(self) -> dict[str, Callable[[Engine, Params, int], Any]]:
        def post(engine: Engine, p: Params, now: int) -> Any:
            return {"listenKey": self.create("futures", now)}

        def put(engine: Engine, p: Params, now: int) -> Any:
            return {"listenKey": self.keep_alive("futures", p.get("listenKey") or None, now)}

        def delete(engine: Engine, p: Params, now: int) -> Any:
            self.delete("futures", p.get("listenKey") or None)
            return {}

        return {"POST": post, "PUT": put, "DELETE": delete}


def _required_key(p: Params) -> str:
    key = p.get("listenKey")
    if not key:
        raise SimError(
            -1102, "Mandatory parameter 'listenKey' was not sent, was empty/null, or malformed."
        )
    return key


def check_ws_signature(params: Any, *, api_key: str, api_secret: str, now: int) -> SimError | None:
    """The WS-API check of a signed request (``params`` with ``apiKey``, ``timestamp``,
    ``signature``): the signature is over the other params sorted by name as a query string."""
    try:
        _check_ws_signature(params, api_key=api_key, api_secret=api_secret, now=now)
    except SimError as err:
        return err
    return None


def _check_ws_signature(params: Any, *, api_key: str, api_secret: str, now: int) -> None:
    if not isinstance(params, dict):
        raise SimError(-1104, "Not all sent parameters were read.")
    check_api_key(params.get("apiKey") or None, api_key)
    signature, timestamp = params.get("signature"), params.get("timestamp")
    if timestamp is None or signature is None:
        raise errors.mandatory("timestamp" if timestamp is None else "signature")
    payload = "&".join(
        f"{k}={str(v).lower() if isinstance(v, bool) else v}"
        for k, v in sorted(params.items())
        if k != "signature"
    )
    expected = hmac.new(api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(str(signature).lower(), expected):
        raise SimError(-1022, "Signature for this request is not valid.")
    if int(timestamp) >= now + 1000:
        raise SimError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now - int(timestamp) > int(params.get("recvWindow", 5000)):
        raise SimError(-1021, "Timestamp for this request is outside of the recvWindow.")


def api_request(
    text: str, *, api_key: str, api_secret: str, now: int
) -> tuple[dict[str, Any], bool | None]:
    """A WS-API request's answer, and whether the user data subscription is now on / off
    (None: unchanged). Methods: ``userDataStream.subscribe.signature``,
    ``userDataStream.unsubscribe``, ``ping``, ``time``."""
    try:
        req = json.loads(text)
    except ValueError:
        req = None
    if not isinstance(req, dict):
        return {"id": None, "status": 400,
                "error": {"code": -1102, "msg": "Malformed request."}}, None  # fmt: skip
    req_id, method = req.get("id"), req.get("method")
    subscribed: bool | None = None
    result: Any = {}
    if method == "userDataStream.subscribe.signature":
        err = check_ws_signature(req.get("params"), api_key=api_key, api_secret=api_secret, now=now)
        if err is not None:
            return {"id": req_id, "status": err.status,
                    "error": {"code": err.code, "msg": err.msg}}, None  # fmt: skip
        subscribed, result = True, {"subscriptionId": 0}
    elif method == "userDataStream.unsubscribe":
        subscribed = False
    elif method == "time":
        result = {"serverTime": now}
    elif method != "ping":
        return {"id": req_id, "status": 400,
                "error": {"code": -1020, "msg": "Unsupported operation."}}, None  # fmt: skip
    return {"id": req_id, "status": 200, "result": result, "rateLimits": []}, subscribed


# --- order changes -> events ----------------------------------------------------------------


class OrderTracker:
    """Finds what changed in the engine's orders since the last poll (new orders, fills, closes)
    and turns it into Binance user-data events, per venue."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._seen: dict[tuple[Venue, int], int] = {}  # open orders -> fills already reported
        self._next: dict[Venue, int] = dict(engine._next_id)

    def poll(self, now: int) -> dict[Venue, list[Event]]:
        out: dict[Venue, list[Event]] = {"spot": [], "futures": []}
        for venue in ("spot", "futures"):
            orders = self.engine.orders[venue]
            upto = self.engine._next_id[venue]
            fresh = [orders[i] for i in range(self._next[venue], upto) if i in orders]
            self._next[venue] = upto
            known = [orders[i] for (v, i) in list(self._seen) if v == venue]
            touched: list[Order] = []
            for order in [*known, *fresh]:
                events = self._changes(order, now)
                if events:
                    touched.append(order)
                    out[venue].extend(events)
            if touched:
                out[venue].append(self._account(venue, touched, now))
        return out

    def _changes(self, o: Order, now: int) -> list[Event]:
        key = (o.venue, o.order_id)
        reported = self._seen.get(key)
        events: list[Event] = []
        if reported is None:
            events.append(self._report(o, "NEW", None, ZERO_STATE, now))
            reported = 0
        cum = sum((f.qty for f in o.fills[:reported]), Decimal(0))
        cum_quote = sum((f.quote_qty for f in o.fills[:reported]), Decimal(0))
        for fill in o.fills[reported:]:
            cum += fill.qty
            cum_quote += fill.quote_qty
            status = "FILLED" if cum >= o.orig_qty else "PARTIALLY_FILLED"
            events.append(self._report(o, "TRADE", fill, (cum, cum_quote, status), now))
        if not o.is_open and o.status in ("CANCELED", "EXPIRED"):
            events.append(self._report(o, o.status, None, (cum, cum_quote, o.status), now))
        if o.is_open:
            self._seen[key] = len(o.fills)
        else:
            self._seen.pop(key, None)
        return events

    def _report(
        self, o: Order, execution: str, fill: Fill | None,
        state: tuple[Decimal, Decimal, str], now: int,
    ) -> Event:  # fmt: skip
        cum, cum_quote, status = state
        if execution == "NEW":
            status = "NEW"
        if o.venue == "futures":
            return _futures_report(o, execution, fill, cum, cum_quote, status, now)
        return _spot_report(o, execution, fill, cum, cum_quote, status, now)

    def _account(self, venue: Venue, orders: list[Order], now: int) -> Event:
        engine = self.engine
        if venue == "spot":
            assets: list[str] = []
            for o in orders:
                spec = engine.spec(o.symbol)
                assets += [a for a in (spec.base, spec.quote) if a not in assets]
            return {
                "e": "outboundAccountPosition", "E": now, "u": now,
                "B": [{"a": a, "f": s8(engine.spot.get(a).free), "l": s8(engine.spot.get(a).locked)}
                      for a in assets],
            }  # fmt: skip
        symbols = sorted({o.symbol for o in orders})
        quotes = sorted({engine.spec(s).quote for s in symbols})
        wallet = engine.futures.wallet
        return {
            "e": "ACCOUNT_UPDATE", "E": now, "T": now,
            "a": {
                "m": "ORDER",
                "B": [{"a": q, "wb": plain(wallet.get(q, Decimal(0))),
                       "cw": plain(wallet.get(q, Decimal(0))), "bc": "0"} for q in quotes],
                "P": [_position(engine, s, now) for s in symbols],
            },
        }  # fmt: skip


ZERO_STATE: Final = (Decimal(0), Decimal(0), "NEW")


def _position(engine: Engine, symbol: str, now: int) -> Event:
    pos = engine.futures.position(symbol)
    mark = engine.mid("futures", symbol, now)
    return {
        "s": symbol, "pa": plain(pos.amount), "ep": plain(pos.entry_price),
        "bep": plain(pos.entry_price), "cr": "0", "up": plain(pos.unrealized(mark)),
        "mt": "cross", "iw": "0", "ps": "BOTH",
    }  # fmt: skip


def _spot_report(
    o: Order, execution: str, fill: Fill | None, cum: Decimal, cum_quote: Decimal, status: str,
    now: int,
) -> Event:  # fmt: skip
    canceled = execution == "CANCELED"
    return {
        "e": "executionReport", "E": now, "s": o.symbol,
        "c": f"cancel{o.order_id}" if canceled else o.client_order_id,
        "S": o.side, "o": o.type, "f": o.time_in_force, "q": s8(o.orig_qty), "p": s8(o.price),
        "P": s8(Decimal(0)), "F": s8(Decimal(0)), "g": -1,
        "C": o.client_order_id if canceled else "",
        "x": execution, "X": status, "r": "NONE", "i": o.order_id,
        "l": s8(fill.qty if fill else Decimal(0)), "z": s8(cum),
        "L": s8(fill.price if fill else Decimal(0)),
        "n": s8(fill.commission) if fill else "0",
        "N": fill.commission_asset if fill else None,
        "T": fill.time if fill else (o.time if execution == "NEW" else o.update_time),
        "t": fill.trade_id if fill else -1, "I": o.order_id * 2 + (fill.trade_id if fill else 0),
        "w": status in ("NEW", "PARTIALLY_FILLED"), "m": bool(fill and fill.maker), "M": False,
        "O": o.time, "Z": s8(cum_quote), "Y": s8(fill.quote_qty if fill else Decimal(0)),
        "Q": s8(o.orig_quote_qty), "W": o.time, "V": "EXPIRE_MAKER",
    }  # fmt: skip


def _futures_report(
    o: Order, execution: str, fill: Fill | None, cum: Decimal, cum_quote: Decimal, status: str,
    now: int,
) -> Event:  # fmt: skip
    avg = cum_quote / cum if cum else Decimal(0)
    t = fill.time if fill else (o.time if execution == "NEW" else o.update_time)
    return {
        "e": "ORDER_TRADE_UPDATE", "E": now, "T": t,
        "o": {
            "s": o.symbol, "c": o.client_order_id, "S": o.side, "o": o.type,
            "f": o.time_in_force, "q": plain(o.orig_qty), "p": plain(o.price), "ap": plain(avg),
            "sp": "0", "x": execution, "X": status, "i": o.order_id,
            "l": plain(fill.qty if fill else Decimal(0)), "z": plain(cum),
            "L": plain(fill.price if fill else Decimal(0)),
            "N": fill.commission_asset if fill else "USDT",
            "n": plain(fill.commission if fill else Decimal(0)), "T": t,
            "t": fill.trade_id if fill else 0, "b": "0", "a": "0",
            "m": bool(fill and fill.maker), "R": o.reduce_only, "wt": "CONTRACT_PRICE",
            "ot": o.type, "ps": "BOTH", "cp": False,
            "rp": plain(fill.realized_pnl if fill else Decimal(0)), "pP": False, "si": 0,
            "ss": 0, "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0,
        },
    }  # fmt: skip
