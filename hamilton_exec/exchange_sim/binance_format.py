"""Binance's JSON shapes for spot (``/api/v3``) and USD-M (``/fapi``): exchange info, orders,
trades, accounts and positions. Numbers are strings, as Binance sends them."""

from decimal import Decimal
from typing import Any

from hamilton_exec.exchange_sim.accounts import ZERO
from hamilton_exec.exchange_sim.market import Filters, SymbolSpec
from hamilton_exec.exchange_sim.matching import Engine, Fill, Order

Json = dict[str, Any]
SPOT_WEIGHT_LIMIT = 6000
FUTURES_WEIGHT_LIMIT = 2400
_ONBOARD_MS = 1_569_398_400_000
_STP_MODES = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]


def s8(value: Decimal) -> str:
    """Spot style: 8 decimals."""
    return f"{value:.8f}"


def plain(value: Decimal) -> str:
    """USD-M style: no exponent, no trailing zeros beyond the value's own."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def places(step: Decimal) -> int:
    return max(0, -int(step.normalize().as_tuple().exponent))


def _filters(f: Filters, futures: bool) -> list[Json]:
    fmt = plain if futures else s8
    lot = {"minQty": fmt(f.min_qty), "maxQty": fmt(f.max_qty), "stepSize": fmt(f.step_size)}
    out: list[Json] = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": fmt(f.min_price),
            "maxPrice": fmt(f.max_price),
            "tickSize": fmt(f.tick_size),
        },
        {"filterType": "LOT_SIZE", **lot},
        {"filterType": "MARKET_LOT_SIZE", **lot, "maxQty": fmt(f.market_max_qty)},
    ]
    if futures:
        out += [
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": plain(f.min_notional)},
        ]
    else:
        out.append(
            {
                "filterType": "NOTIONAL",
                "minNotional": s8(f.min_notional),
                "applyMinToMarket": True,
                "maxNotional": s8(Decimal(9_000_000)),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            }
        )
    return out


def exchange_info(specs: list[SymbolSpec], now: int, *, futures: bool) -> Json:
    limit = FUTURES_WEIGHT_LIMIT if futures else SPOT_WEIGHT_LIMIT
    rate_limits: list[Json] = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}
        if futures
        else {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    ]
    symbols = [_futures_symbol(s) if futures else _spot_symbol(s) for s in specs]
    info: Json = {
        "timezone": "UTC",
        "serverTime": now,
        "rateLimits": rate_limits,
        "exchangeFilters": [],
        "symbols": symbols,
    }
    if futures:
        quotes = sorted({s.quote for s in specs})
        info["assets"] = [{"asset": q, "marginAvailable": True} for q in quotes]
    return info


def _spot_symbol(s: SymbolSpec) -> Json:
    return {
        "symbol": s.id,
        "status": "TRADING",
        "baseAsset": s.base,
        "baseAssetPrecision": 8,
        "quoteAsset": s.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": _filters(s.spot, futures=False),
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": _STP_MODES,
    }


def _futures_symbol(s: SymbolSpec) -> Json:
    f = s.futures
    return {
        "symbol": s.id,
        "pair": s.id,
        "contractType": "PERPETUAL",
        "deliveryDate": 4_133_404_800_000,
        "onboardDate": _ONBOARD_MS,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": s.base,
        "quoteAsset": s.quote,
        "marginAsset": s.quote,
        "pricePrecision": places(f.tick_size),
        "quantityPrecision": places(f.step_size),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "filters": _filters(f, futures=True),
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def spot_order(o: Order, *, resp: str = "GET") -> Json:
    """GET shape, or the POST shape for ``resp`` ACK / RESULT / FULL, or DELETE's (CANCEL)."""
    head: Json = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1}
    if resp == "CANCEL":
        head["origClientOrderId"] = o.client_order_id
        head["clientOrderId"] = f"cancel{o.order_id}"
        head["transactTime"] = o.update_time
    else:
        head["clientOrderId"] = o.client_order_id
    if resp == "ACK":
        return {**head, "transactTime": o.time}
    if resp in ("RESULT", "FULL"):
        head["transactTime"] = o.time
    body: Json = {
        **head,
        "price": s8(o.price),
        "origQty": s8(o.orig_qty),
        "executedQty": s8(o.executed_qty),
        "origQuoteOrderQty": s8(o.orig_quote_qty),
        "cummulativeQuoteQty": s8(o.cum_quote),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    if resp == "GET":
        body.update(
            stopPrice=s8(ZERO),
            icebergQty=s8(ZERO),
            time=o.time,
            updateTime=o.update_time,
            isWorking=True,
            workingTime=o.time,
        )
    elif resp in ("RESULT", "FULL"):
        body["workingTime"] = o.time
    if resp == "FULL":
        body["fills"] = [
            {
                "price": s8(f.price),
                "qty": s8(f.qty),
                "commission": s8(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in o.fills
        ]
    return body


def futures_order(o: Order, *, with_time: bool = True) -> Json:
    body: Json = {
        "orderId": o.order_id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_order_id,
        "price": plain(o.price),
        "avgPrice": plain(o.avg_price),
        "origQty": plain(o.orig_qty),
        "executedQty": plain(o.executed_qty),
        "cumQty": plain(o.executed_qty),
        "cumQuote": plain(o.cum_quote),
        "timeInForce": o.time_in_force,
        "type": o.type,
        "reduceOnly": o.reduce_only,
        "closePosition": False,
        "side": o.side,
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": o.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "updateTime": o.update_time,
    }
    if with_time:
        body["time"] = o.time
    return body


def spot_trade(f: Fill) -> Json:
    return {
        "symbol": f.symbol,
        "id": f.trade_id,
        "orderId": f.order_id,
        "orderListId": -1,
        "price": s8(f.price),
        "qty": s8(f.qty),
        "quoteQty": s8(f.quote_qty),
        "commission": s8(f.commission),
        "commissionAsset": f.commission_asset,
        "time": f.time,
        "isBuyer": f.side == "BUY",
        "isMaker": f.maker,
        "isBestMatch": True,
    }


def futures_trade(f: Fill) -> Json:
    return {
        "buyer": f.side == "BUY",
        "commission": plain(f.commission),
        "commissionAsset": f.commission_asset,
        "id": f.trade_id,
        "maker": f.maker,
        "orderId": f.order_id,
        "price": plain(f.price),
        "qty": plain(f.qty),
        "quoteQty": plain(f.quote_qty),
        "realizedPnl": plain(f.realized_pnl),
        "side": f.side,
        "positionSide": "BOTH",
        "symbol": f.symbol,
        "time": f.time,
    }


def spot_account(engine: Engine, now: int) -> Json:
    cfg = engine.config
    maker = Decimal(repr(cfg.spot_maker_bps)) / 10_000
    taker = Decimal(repr(cfg.spot_taker_bps)) / 10_000
    return {
        "makerCommission": int(cfg.spot_maker_bps),
        "takerCommission": int(cfg.spot_taker_bps),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": s8(maker),
            "taker": s8(taker),
            "buyer": s8(ZERO),
            "seller": s8(ZERO),
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": engine.spot.update_ms or now,
        "accountType": "SPOT",
        "balances": [
            {"asset": a, "free": s8(b.free), "locked": s8(b.locked)}
            for a, b in sorted(engine.spot.balances.items())
        ],
        "permissions": ["SPOT"],
        "uid": 354937868,
    }
