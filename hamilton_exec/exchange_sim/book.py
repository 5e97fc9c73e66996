"""The synthetic order book around a mid price, and walking it as a taker."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from hamilton_exec.exchange_sim.filters import ceil_to, floor_to
from hamilton_exec.exchange_sim.market import Filters

Level = tuple[Decimal, Decimal]  # (price, quantity)
_BPS = Decimal(10_000)


@dataclass(frozen=True)
class Book:
    bids: list[Level]
    asks: list[Level]


def build_book(
    mid: Decimal,
    f: Filters,
    *,
    half_spread_bps: float,
    level_step_bps: float,
    levels: int,
    level_notional: float,
) -> Book:
    """``levels`` levels each side: the best ``half_spread_bps`` from ``mid``, then one every
    ``level_step_bps`` (at least a tick apart), each of ``level_notional`` quote on the lot step."""
    size = max(f.step_size, floor_to(Decimal(repr(level_notional)) / mid, f.step_size))
    bids: list[Level] = []
    asks: list[Level] = []
    for i in range(levels):
        offset = Decimal(repr(half_spread_bps + i * level_step_bps)) / _BPS
        bid = floor_to(mid * (1 - offset), f.tick_size)
        ask = ceil_to(mid * (1 + offset), f.tick_size)
        if bids and bid >= bids[-1][0]:
            bid = bids[-1][0] - f.tick_size
        if asks and ask <= asks[-1][0]:
            ask = asks[-1][0] + f.tick_size
        if not asks and ask <= bid:
            ask = bid + f.tick_size
        if bid > 0:
            bids.append((bid, size))
        asks.append((ask, size))
    return Book(bids, asks)


def crosses(side: str, price: Decimal, opposite: list[Level]) -> bool:
    """Whether a ``side`` order at ``price`` would take from ``opposite`` (best level first)."""
    if not opposite:
        return False
    best = opposite[0][0]
    return best <= price if side == "BUY" else best >= price


def total(takes: Iterable[Level]) -> Decimal:
    return sum((q for _, q in takes), Decimal(0))


def walk(
    levels: list[Level],
    side: str,
    qty: Decimal | None,
    quote: Decimal | None,
    limit: Decimal | None,
    f: Filters,
) -> list[Level]:
    """(price, qty) taken from ``levels`` for ``qty`` base (or ``quote`` worth) up to ``limit``."""
    out: list[Level] = []
    remaining, budget = qty, quote
    for price, size in levels:
        if limit is not None and (price > limit if side == "BUY" else price < limit):
            break
        take = size if remaining is None else min(size, remaining)
        if budget is not None:
            take = min(take, floor_to(budget / price, f.step_size))
            budget -= take * price
        if take <= 0:
            break
        out.append((price, take))
        if remaining is not None:
            remaining -= take
            if remaining == 0:
                break
    return out
