"""Accounts: spot balances (free / locked per asset) and the USD-M wallet with one-way positions.

Pure bookkeeping in ``Decimal``; the matching engine decides what moves, these classes only keep
the arithmetic (locks, entry prices, realized PnL) in one place.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from hamilton_exec.exchange_sim.errors import insufficient_balance

ZERO = Decimal(0)


@dataclass
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass
class SpotAccount:
    balances: dict[str, Balance] = field(default_factory=dict)
    update_ms: int = 0

    def get(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())

    def set(self, asset: str, free: Decimal, locked: Decimal = ZERO) -> None:
        self.balances[asset] = Balance(free, locked)

    def require(self, asset: str, amount: Decimal) -> None:
        if self.get(asset).free < amount:
            raise insufficient_balance()

    def lock(self, asset: str, amount: Decimal) -> None:
        self.require(asset, amount)
        bal = self.get(asset)
        bal.free -= amount
        bal.locked += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        bal = self.get(asset)
        amount = min(amount, bal.locked)
        bal.locked -= amount
        bal.free += amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self.get(asset).free += amount

    def debit(self, asset: str, amount: Decimal, *, locked: bool = False) -> None:
        bal = self.get(asset)
        if locked:
            bal.locked -= amount
        else:
            bal.free -= amount

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {
            a: {"free": str(b.free), "locked": str(b.locked)}
            for a, b in sorted(self.balances.items())
        }


@dataclass
class Position:
    amount: Decimal = ZERO  # signed: > 0 long, < 0 short
    entry_price: Decimal = ZERO
    update_ms: int = 0

    def unrealized(self, mark: Decimal) -> Decimal:
        return (mark - self.entry_price) * self.amount if self.amount else ZERO


@dataclass
class FuturesAccount:
    """USD-M, one-way mode (``positionSide`` BOTH), cross margin, margin asset = quote."""

    wallet: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    default_leverage: int = 20
    update_ms: int = 0

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position())

    def leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol, self.default_leverage)

    def apply_fill(
        self, symbol: str, asset: str, signed_qty: Decimal, price: Decimal, fee: Decimal, now: int
    ) -> Decimal:
        """Move the position by ``signed_qty`` at ``price``; returns the realized PnL (the fee is
        charged to the wallet separately from it, as Binance reports them)."""
        pos = self.position(symbol)
        realized = ZERO
        if pos.amount == 0 or (pos.amount > 0) == (signed_qty > 0):
            size = abs(pos.amount) + abs(signed_qty)
            pos.entry_price = (abs(pos.amount) * pos.entry_price + abs(signed_qty) * price) / size
            pos.amount += signed_qty
        else:
            closing = min(abs(signed_qty), abs(pos.amount))
            direction = 1 if pos.amount > 0 else -1
            realized = (price - pos.entry_price) * closing * direction
            pos.amount += signed_qty
            if pos.amount == 0:
                pos.entry_price = ZERO
            elif (pos.amount > 0) != (direction > 0):
                pos.entry_price = price
        pos.update_ms = now
        self.wallet[asset] = self.wallet.get(asset, ZERO) + realized - fee
        self.update_ms = now
        return realized

    def position_margin(self, marks: Mapping[str, Decimal]) -> Decimal:
        return sum(
            (
                abs(p.amount) * marks.get(s, p.entry_price) / self.leverage_of(s)
                for s, p in self.positions.items()
                if p.amount
            ),
            ZERO,
        )

    def unrealized(self, marks: Mapping[str, Decimal]) -> Decimal:
        return sum(
            (p.unrealized(marks.get(s, p.entry_price)) for s, p in self.positions.items()),
            ZERO,
        )

    def available(self, asset: str, marks: Mapping[str, Decimal], order_margin: Decimal) -> Decimal:
        """Wallet + unrealized PnL - margin held by positions and open orders."""
        return (
            self.wallet.get(asset, ZERO)
            + self.unrealized(marks)
            - self.position_margin(marks)
            - order_margin
        )
