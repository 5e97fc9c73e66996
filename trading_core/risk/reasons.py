"""Reason codes of the risk enforcer and the trading states, with the integer codes the numba
kernels use (index in the tuples below; 0 means "none")."""

from enum import StrEnum
from typing import Final


class DenialReason(StrEnum):
    """Why the enforcer denied (or cut) an order."""

    INVALID_PRICE = "invalid_price"
    ZERO_SIZE = "zero_size"
    KILL_SWITCH = "kill_switch"
    DAILY_LOSS_HALT = "daily_loss_halt"
    ORDER_RATE = "order_rate"
    REDUCING_ONLY = "reducing_only"
    MIN_CONFIDENCE = "min_confidence"
    MAX_CONCURRENT_TRADES = "max_concurrent_trades"
    MAX_POSITION = "max_position"
    MAX_LEVERAGE = "max_leverage"
    MAX_NOTIONAL = "max_notional"
    MIN_NOTIONAL = "min_notional"


class TradingState(StrEnum):
    """ACTIVE trades normally; REDUCING (near the daily loss limit) and HALTED (at it) only
    reduce positions: an order's reducing part goes through, new risk is denied."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


R_NONE: Final = 0
DENIAL_BY_CODE: Final[tuple[DenialReason | None, ...]] = (None, *DenialReason)
DENIAL_CODE: Final[dict[DenialReason, int]] = {r: i for i, r in enumerate(DENIAL_BY_CODE) if r}

R_INVALID_PRICE: Final = DENIAL_CODE[DenialReason.INVALID_PRICE]
R_ZERO_SIZE: Final = DENIAL_CODE[DenialReason.ZERO_SIZE]
R_KILL_SWITCH: Final = DENIAL_CODE[DenialReason.KILL_SWITCH]
R_DAILY_LOSS_HALT: Final = DENIAL_CODE[DenialReason.DAILY_LOSS_HALT]
R_ORDER_RATE: Final = DENIAL_CODE[DenialReason.ORDER_RATE]
R_REDUCING_ONLY: Final = DENIAL_CODE[DenialReason.REDUCING_ONLY]
R_MIN_CONFIDENCE: Final = DENIAL_CODE[DenialReason.MIN_CONFIDENCE]
R_MAX_CONCURRENT: Final = DENIAL_CODE[DenialReason.MAX_CONCURRENT_TRADES]
R_MAX_POSITION: Final = DENIAL_CODE[DenialReason.MAX_POSITION]
R_MAX_LEVERAGE: Final = DENIAL_CODE[DenialReason.MAX_LEVERAGE]
R_MAX_NOTIONAL: Final = DENIAL_CODE[DenialReason.MAX_NOTIONAL]
R_MIN_NOTIONAL: Final = DENIAL_CODE[DenialReason.MIN_NOTIONAL]

STATE_BY_CODE: Final[tuple[TradingState, ...]] = tuple(TradingState)
STATE_CODE: Final[dict[TradingState, int]] = {s: i for i, s in enumerate(STATE_BY_CODE)}
S_ACTIVE: Final = STATE_CODE[TradingState.ACTIVE]
S_REDUCING: Final = STATE_CODE[TradingState.REDUCING]
S_HALTED: Final = STATE_CODE[TradingState.HALTED]


def denial_from_code(code: int) -> DenialReason | None:
    """The reason for a kernel code (None for 0); raises ValueError for an unknown code."""
    if not 0 <= code < len(DENIAL_BY_CODE):
        raise ValueError(f"risk reason code {code!r}; allowed: 0..{len(DENIAL_BY_CODE) - 1}")
    return DENIAL_BY_CODE[code]
