"""Small shared vocabulary: regimes, actions, stages, timeframes."""

from enum import StrEnum
from typing import Final


class Regime(StrEnum):
    """Market regime of one bar of one coin."""

    TREND = "TREND"
    RANGE = "RANGE"
    PANIC = "PANIC"
    ILLIQUID = "ILLIQUID"


REGIMES: Final[tuple[Regime, ...]] = tuple(Regime)
REGIME_CODES: Final[dict[Regime, int]] = {r: i for i, r in enumerate(REGIMES)}


class Action(StrEnum):
    """What a decision does."""

    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


class Stage(StrEnum):
    """Lifecycle stage of a model version in the Brain Library."""

    CANDIDATE = "candidate"
    SHADOW = "shadow"
    PRODUCTION = "production"
    ARCHIVED = "archived"


TIMEFRAME_MS: Final[dict[str, int]] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
TIMEFRAMES: Final[tuple[str, ...]] = tuple(TIMEFRAME_MS)


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds in one bar of ``timeframe``; raises ValueError naming the allowed values."""
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        allowed = ", ".join(TIMEFRAMES)
        raise ValueError(f"timeframe {timeframe!r} is not supported; allowed: {allowed}") from None


def bars_per_year(timeframe: str) -> float:
    """Bars in a 365-day year (crypto trades around the clock)."""
    return 365.0 * 86_400_000 / timeframe_ms(timeframe)
