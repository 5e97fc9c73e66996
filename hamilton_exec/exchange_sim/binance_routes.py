"""Endpoint handlers: parameter checks as Binance makes them and the spot (``/api/v3``) order and
account endpoints. Market data handlers are in :mod:`hamilton_exec.exchange_sim.binance_market`,
USD-M order/account handlers in :mod:`hamilton_exec.exchange_sim.binance_futures`.

A handler takes ``(engine, params, now)`` and returns the JSON body, or raises
:class:`~hamilton_exec.exchange_sim.errors.SimError`.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, cast

from hamilton_exec.exchange_sim import binance_format as fmt
from hamilton_exec.exchange_sim import errors
from hamilton_exec.exchange_sim.errors import SimError
from hamilton_exec.exchange_sim.matching import Engine, OrderParams, Venue

Params = dict[str, str]
Handler = Callable[[Engine, Params, int], Any]
CLIENT_ID: Final = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_DECIMAL: Final = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_INT: Final = re.compile(r"^-?[0-9]{1,20}$")


@dataclass(frozen=True)
class Route:
    handler: Handler
    signed: bool = False
    weight: Callable[[Params], int] = lambda _: 1
    places_order: bool = False
    api_key_only: bool = False  # USER_STREAM endpoints (listenKey): X-MBX-APIKEY, no signature


def const(n: int) -> Callable[[Params], int]:
    return lambda _: n


# --- parameters ---------------------------------------------------------------------------


def required(p: Params, name: str) -> str:
    value = p.get(name)
    if value is None or value == "":
        raise errors.mandatory(name)
    return value


def decimal(p: Params, name: str) -> Decimal | None:
    value = p.get(name)
    if value is None or value == "":
        return None
    if not _DECIMAL.match(value):
        raise errors.illegal(name, _DECIMAL.pattern)
    return Decimal(value)


def integer(p: Params, name: str) -> int | None:
    value = p.get(name)
    if value is None or value == "":
        return None
    if not _INT.match(value):
        raise errors.illegal(name, "^[0-9]{1,20}$")
    return int(value)


def limit_of(p: Params, default: int, maximum: int) -> int:
    value = integer(p, "limit")
    return default if value is None else max(1, min(value, maximum))


def symbol(engine: Engine, p: Params) -> str:
    sym = required(p, "symbol")
    engine.spec(sym)
    return sym


def symbols(engine: Engine, p: Params) -> list[str]:
    """``symbol``, or the JSON list ``symbols``, or every listed symbol."""
    if p.get("symbol"):
        return [symbol(engine, p)]
    if p.get("symbols"):
        try:
            listed = json.loads(p["symbols"])
        except ValueError:
            raise errors.illegal("symbols", '["BTCUSDT","ETHUSDT"]') from None
        for s in listed:
            engine.spec(str(s))
        return [str(s) for s in listed]
    return [s.id for s in engine.market.specs]


def order_ref(p: Params) -> tuple[int | None, str | None]:
    order_id = integer(p, "orderId")
    cid = p.get("origClientOrderId") or None
    if order_id is None and cid is None:
        raise SimError(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    return order_id, cid


def _amounts(
    p: Params, kind: str, *, futures: bool
) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """(price, quantity, quoteOrderQty) with Binance's which-is-required rules per order type."""
    price = decimal(p, "price")
    if kind == "MARKET" and price is not None:
        raise SimError(-1106, "Parameter 'price' sent when not required.")
    if kind != "MARKET" and price is None:
        raise errors.mandatory("price")
    qty, quote_qty = decimal(p, "quantity"), decimal(p, "quoteOrderQty")
    if futures or kind != "MARKET":
        if qty is None:
            raise errors.mandatory("quantity")
        return price, qty, None
    if qty is None and quote_qty is None:
        raise SimError(
            -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
        )
    if qty is not None and quote_qty is not None:
        raise SimError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
    return price, qty, quote_qty


def order_params(engine: Engine, p: Params, *, futures: bool) -> OrderParams:
    """The common checks of a new order (symbol, side, type, time in force, quantities)."""
    sym = symbol(engine, p)
    side = required(p, "side")
    if side not in ("BUY", "SELL"):
        raise SimError(-1117, "Invalid side.")
    kind = required(p, "type")
    allowed = ("LIMIT", "MARKET") if futures else ("LIMIT", "MARKET", "LIMIT_MAKER")
    if kind not in allowed:
        raise SimError(-1116, "Invalid orderType.")
    tif = p.get("timeInForce") or None
    tifs = ("GTC", "IOC", "FOK", "GTX") if futures else ("GTC", "IOC", "FOK")
    if tif is not None and tif not in tifs:
        raise SimError(-1115, "Invalid timeInForce.")
    if kind == "LIMIT" and tif is None:
        raise errors.mandatory("timeInForce")
    if kind != "LIMIT" and tif is not None:
        raise SimError(-1106, "Parameter 'timeInForce' sent when not required.")
    price, qty, quote_qty = _amounts(p, kind, futures=futures)
    cid = p.get("newClientOrderId") or None
    if cid is not None and not CLIENT_ID.match(cid):
        raise errors.illegal("newClientOrderId", CLIENT_ID.pattern)
    return OrderParams(
        symbol=sym,
        side=cast(Any, side),
        type=cast(Any, kind),
        quantity=qty,
        price=price,
        time_in_force=cast(Any, tif),
        quote_order_qty=quote_qty,
        client_order_id=cid,
    )


# --- spot orders and account ----------------------------------------------------------------


def spot_new_order(engine: Engine, p: Params, now: int) -> Any:
    params = order_params(engine, p, futures=False)
    resp = p.get("newOrderRespType") or "FULL"
    if resp not in ("ACK", "RESULT", "FULL"):
        raise SimError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
    return fmt.spot_order(engine.place("spot", params, now), resp=resp)


def spot_test_order(engine: Engine, p: Params, now: int) -> Any:
    order_params(engine, p, futures=False)
    return {}


def spot_get_order(engine: Engine, p: Params, now: int) -> Any:
    return fmt.spot_order(engine.lookup("spot", symbol(engine, p), *order_ref(p)))


def spot_cancel_order(engine: Engine, p: Params, now: int) -> Any:
    sym = symbol(engine, p)
    return fmt.spot_order(engine.cancel("spot", sym, *order_ref(p), now), resp="CANCEL")


def spot_open_orders(engine: Engine, p: Params, now: int) -> Any:
    sym = symbol(engine, p) if p.get("symbol") else None
    return [fmt.spot_order(o) for o in engine.open_orders("spot", sym)]


def spot_cancel_all(engine: Engine, p: Params, now: int) -> Any:
    canceled = engine.cancel_all("spot", symbol(engine, p), now)
    if not canceled:
        raise errors.unknown_order()
    return [fmt.spot_order(o, resp="CANCEL") for o in canceled]


def all_orders(venue: Venue) -> Handler:
    def handler(engine: Engine, p: Params, now: int) -> Any:
        sym = symbol(engine, p)
        start, end, from_id = integer(p, "startTime"), integer(p, "endTime"), integer(p, "orderId")
        orders = [
            o
            for o in engine.orders[venue].values()
            if o.symbol == sym
            and (from_id is None or o.order_id >= from_id)
            and (start is None or o.time >= start)
            and (end is None or o.time <= end)
        ][: limit_of(p, 500, 1000)]
        return [fmt.futures_order(o) if venue == "futures" else fmt.spot_order(o) for o in orders]

    return handler


def trades(venue: Venue) -> Handler:
    def handler(engine: Engine, p: Params, now: int) -> Any:
        sym = symbol(engine, p)
        start, end = integer(p, "startTime"), integer(p, "endTime")
        order_id, from_id = integer(p, "orderId"), integer(p, "fromId")
        found = [
            f
            for f in engine.trades[venue]
            if f.symbol == sym
            and (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (start is None or f.time >= start)
            and (end is None or f.time <= end)
        ]
        found = (
            found[: limit_of(p, 500, 1000)]
            if from_id or start
            else found[-limit_of(p, 500, 1000) :]
        )
        return [fmt.futures_trade(f) if venue == "futures" else fmt.spot_trade(f) for f in found]

    return handler


def spot_account(engine: Engine, p: Params, now: int) -> Any:
    return fmt.spot_account(engine, now)
