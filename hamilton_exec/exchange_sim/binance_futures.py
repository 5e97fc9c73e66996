"""USD-M (``/fapi``) order, account and position handlers (one-way mode, cross margin)."""

from dataclasses import replace
from decimal import Decimal
from typing import Any

from hamilton_exec.exchange_sim import binance_format as fmt
from hamilton_exec.exchange_sim import errors
from hamilton_exec.exchange_sim.accounts import ZERO, Position
from hamilton_exec.exchange_sim.binance_routes import (
    Params,
    integer,
    order_params,
    order_ref,
    symbol,
)
from hamilton_exec.exchange_sim.errors import SimError
from hamilton_exec.exchange_sim.matching import Engine

_MAINT = Decimal("0.004")


def new_order(engine: Engine, p: Params, now: int) -> Any:
    params = order_params(engine, p, futures=True)
    reduce_only = p.get("reduceOnly", "false").lower()
    if reduce_only not in ("true", "false"):
        raise errors.illegal("reduceOnly", "true|false")
    if p.get("positionSide", "BOTH") != "BOTH":
        raise SimError(-4061, "Order's position side does not match user's setting.")
    resp = p.get("newOrderRespType") or "ACK"
    if resp not in ("ACK", "RESULT"):
        raise SimError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
    order = engine.place("futures", replace(params, reduce_only=reduce_only == "true"), now)
    return fmt.futures_order(order, with_time=False)


def get_order(engine: Engine, p: Params, now: int) -> Any:
    return fmt.futures_order(engine.lookup("futures", symbol(engine, p), *order_ref(p)))


def cancel_order(engine: Engine, p: Params, now: int) -> Any:
    sym = symbol(engine, p)
    return fmt.futures_order(engine.cancel("futures", sym, *order_ref(p), now), with_time=False)


def open_orders(engine: Engine, p: Params, now: int) -> Any:
    sym = symbol(engine, p) if p.get("symbol") else None
    return [fmt.futures_order(o) for o in engine.open_orders("futures", sym)]


def cancel_all(engine: Engine, p: Params, now: int) -> Any:
    engine.cancel_all("futures", symbol(engine, p), now)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def _position_rows(engine: Engine, now: int, *, all_symbols: bool) -> list[dict[str, Any]]:
    rows = []
    for spec in engine.market.specs:
        pos = engine.futures.positions.get(spec.id, Position())
        if not pos.amount and not all_symbols:
            continue
        mark = engine.mid("futures", spec.id, now)
        leverage = engine.futures.leverage_of(spec.id)
        notional = pos.amount * mark
        margin = abs(notional) / leverage
        rows.append(
            {
                "symbol": spec.id,
                "positionSide": "BOTH",
                "positionAmt": fmt.plain(pos.amount),
                "entryPrice": fmt.plain(pos.entry_price),
                "breakEvenPrice": fmt.plain(pos.entry_price),
                "markPrice": fmt.plain(mark),
                "unRealizedProfit": fmt.plain(pos.unrealized(mark)),
                "liquidationPrice": "0",
                "isolatedMargin": "0",
                "notional": fmt.plain(notional),
                "marginAsset": spec.quote,
                "isolatedWallet": "0",
                "initialMargin": fmt.plain(margin),
                "maintMargin": fmt.plain(abs(notional) * _MAINT),
                "positionInitialMargin": fmt.plain(margin),
                "openOrderInitialMargin": "0",
                "adl": 0,
                "bidNotional": "0",
                "askNotional": "0",
                "leverage": str(leverage),
                "maxNotionalValue": "50000000",
                "marginType": "cross",
                "isAutoAddMargin": "false",
                "updateTime": pos.update_ms,
            }
        )
    return rows


def position_risk_v3(engine: Engine, p: Params, now: int) -> Any:
    rows = _position_rows(engine, now, all_symbols=False)
    return [r for r in rows if not p.get("symbol") or r["symbol"] == symbol(engine, p)]


def position_risk_v2(engine: Engine, p: Params, now: int) -> Any:
    rows = _position_rows(engine, now, all_symbols=True)
    return [r for r in rows if not p.get("symbol") or r["symbol"] == symbol(engine, p)]


def _assets(engine: Engine, now: int) -> list[dict[str, Any]]:
    marks = {
        s: engine.mid("futures", s, now) for s, p in engine.futures.positions.items() if p.amount
    }
    order_margin = sum(
        (o.remaining * o.price / engine.futures.leverage_of(o.symbol)
         for o in engine.open_orders("futures") if not o.reduce_only),
        ZERO,
    )  # fmt: skip
    rows = []
    for asset, wallet in sorted(engine.futures.wallet.items()):
        upnl = engine.futures.unrealized(marks)
        position_margin = engine.futures.position_margin(marks)
        available = engine.futures.available(asset, marks, order_margin)
        rows.append(
            {
                "asset": asset,
                "walletBalance": fmt.plain(wallet),
                "unrealizedProfit": fmt.plain(upnl),
                "marginBalance": fmt.plain(wallet + upnl),
                "maintMargin": fmt.plain(position_margin * _MAINT * 20),
                "initialMargin": fmt.plain(position_margin + order_margin),
                "positionInitialMargin": fmt.plain(position_margin),
                "openOrderInitialMargin": fmt.plain(order_margin),
                "crossWalletBalance": fmt.plain(wallet),
                "crossUnPnl": fmt.plain(upnl),
                "availableBalance": fmt.plain(available),
                "maxWithdrawAmount": fmt.plain(max(ZERO, available)),
                "marginAvailable": True,
                "updateTime": engine.futures.update_ms or now,
            }
        )
    return rows


def account(engine: Engine, p: Params, now: int) -> Any:
    assets = _assets(engine, now)

    def total(key: str) -> str:
        return fmt.plain(sum((Decimal(a[key]) for a in assets), ZERO))

    return {
        "feeTier": 0,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "totalInitialMargin": total("initialMargin"),
        "totalMaintMargin": total("maintMargin"),
        "totalWalletBalance": total("walletBalance"),
        "totalUnrealizedProfit": total("unrealizedProfit"),
        "totalMarginBalance": total("marginBalance"),
        "totalPositionInitialMargin": total("positionInitialMargin"),
        "totalOpenOrderInitialMargin": total("openOrderInitialMargin"),
        "totalCrossWalletBalance": total("crossWalletBalance"),
        "totalCrossUnPnl": total("crossUnPnl"),
        "availableBalance": total("availableBalance"),
        "maxWithdrawAmount": total("maxWithdrawAmount"),
        "assets": assets,
        "positions": _position_rows(engine, now, all_symbols=False),
    }


def balance(engine: Engine, p: Params, now: int) -> Any:
    return [
        {
            "accountAlias": "SgsR",
            "asset": a["asset"],
            "balance": a["walletBalance"],
            "crossWalletBalance": a["crossWalletBalance"],
            "crossUnPnl": a["crossUnPnl"],
            "availableBalance": a["availableBalance"],
            "maxWithdrawAmount": a["maxWithdrawAmount"],
            "marginAvailable": True,
            "updateTime": a["updateTime"],
        }
        for a in _assets(engine, now)
    ]


def leverage_bracket(engine: Engine, p: Params, now: int) -> Any:
    wanted = symbol(engine, p) if p.get("symbol") else None
    brackets = [
        {"bracket": 1, "initialLeverage": 125, "notionalCap": 50_000, "notionalFloor": 0,
         "maintMarginRatio": 0.004, "cum": 0.0},
        {"bracket": 2, "initialLeverage": 100, "notionalCap": 600_000, "notionalFloor": 50_000,
         "maintMarginRatio": 0.005, "cum": 50.0},
    ]  # fmt: skip
    return [
        {"symbol": s.id, "notionalCoef": 1.0, "brackets": brackets}
        for s in engine.market.specs
        if wanted is None or s.id == wanted
    ]


def set_leverage(engine: Engine, p: Params, now: int) -> Any:
    sym = symbol(engine, p)
    value = integer(p, "leverage")
    if value is None:
        raise errors.mandatory("leverage")
    if not 1 <= value <= 125:
        raise SimError(-4028, f"Leverage {value} is not valid")
    engine.futures.leverage[sym] = value
    return {"leverage": value, "maxNotionalValue": "50000000", "symbol": sym}


def position_mode(engine: Engine, p: Params, now: int) -> Any:
    return {"dualSidePosition": False}
