"""Symbol filter checks with the error each Binance API answers.

Spot answers every failure with ``-1013 "Filter failure: <FILTER>"`` (PRICE_FILTER, LOT_SIZE,
MARKET_LOT_SIZE, NOTIONAL). USD-M answers with its own codes: -4014 price off the tick, -4013 /
-4016 price out of range, -1111 quantity off the step, -4003 / -4004 / -4005 quantity not
positive / under the minimum / over the maximum, -4164 notional under the minimum (waived for
reduce-only orders).
"""

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from hamilton_exec.exchange_sim.errors import SimError, filter_failure
from hamilton_exec.exchange_sim.market import Filters


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_CEILING) * step


def _on_grid(value: Decimal, origin: Decimal, step: Decimal) -> bool:
    return step == 0 or (value - origin) % step == 0


def check_spot(
    f: Filters, *, is_market: bool, qty: Decimal | None, price: Decimal | None, ref_price: Decimal
) -> None:
    """Raise the spot -1013 filter failure for this order, if any (quote-quantity market orders
    pass ``qty`` None and are checked for notional only)."""
    if price is not None and (
        price < f.min_price or price > f.max_price or not _on_grid(price, f.min_price, f.tick_size)
    ):
        raise filter_failure("PRICE_FILTER")
    if qty is not None:
        if qty < f.min_qty or qty > f.max_qty or not _on_grid(qty, f.min_qty, f.step_size):
            raise filter_failure("LOT_SIZE")
        if is_market and qty > f.market_max_qty:
            raise filter_failure("MARKET_LOT_SIZE")
        notional = qty * (ref_price if price is None else price)
        if notional < f.min_notional:
            raise filter_failure("NOTIONAL")


def check_futures(
    f: Filters,
    *,
    is_market: bool,
    qty: Decimal,
    price: Decimal | None,
    ref_price: Decimal,
    reduce_only: bool,
) -> None:
    """Raise the USD-M error for this order's filters, if any."""
    if price is not None:
        if price < f.min_price:
            raise SimError(-4013, "Price less than min price.")
        if price > f.max_price:
            raise SimError(-4016, f"Limit price can't be higher than {f.max_price}.")
        if not _on_grid(price, f.min_price, f.tick_size):
            raise SimError(-4014, "Price not increased by tick size.")
    if qty <= 0:
        raise SimError(-4003, "Quantity less than or equal to zero.")
    if qty < f.min_qty:
        raise SimError(-4004, "Quantity less than min quantity.")
    if qty > (f.market_max_qty if is_market else f.max_qty):
        raise SimError(-4005, "Quantity greater than max quantity.")
    if not _on_grid(qty, f.min_qty, f.step_size):
        raise SimError(-1111, "Precision is over the maximum defined for this asset.")
    notional = qty * (ref_price if price is None else price)
    if notional < f.min_notional and not reduce_only:
        raise SimError(
            -4164,
            f"Order's notional must be no smaller than {f.min_notional.normalize():f} "
            "(unless you choose reduce only).",
        )
