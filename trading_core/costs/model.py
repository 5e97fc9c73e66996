"""The cost model: fees per venue and side, spread, square-root slippage, perp funding, safety.

All figures are basis points of the order's notional. :class:`CostBreakdown` is a ROUND TRIP
(open and later close one position): fee, half-spread and slippage are paid on each leg, so
``fee_bps = 2 x one-way fee`` and ``spread_bps = 2 x half-spread = the full quoted spread``;
funding is paid once over the expected holding time (perps only); the safety margin once.
Each simulated *fill* pays one leg: ``one_way_fee_bps`` as a fee and ``one_way_price_bps``
(half-spread + slippage) as a worse price.

The formulas live in :mod:`trading_core.costs.kernel` (numba) so that this API, the decision
step and the backtest share one implementation.
"""

import itertools
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt

from trading_core.config.models import CostModelSection
from trading_core.costs import kernel

SpreadSource = Literal["websocket", "api", "static", "candles"]


class SpreadOrigin(StrEnum):
    """Where the spread of one estimate came from."""

    BOOK = "book"
    CANDLES = "candles"
    STATIC = "static"


@dataclass(frozen=True, slots=True)
class CostParams:
    """The cost model's parameters for one venue, liquidity side and instrument.

    ``fee_bps`` is the one-way fee; ``funding_bps_per_8h`` is already 0 for spot.
    """

    venue: str
    liquidity_side: Literal["maker", "taker"]
    instrument: Literal["spot", "perp"]
    fee_bps: float
    funding_bps_per_8h: float
    impact_factor: float
    participation_rate: float
    safety_margin_bps: float
    spread_source: SpreadSource
    static_spread_bps: float
    min_edge_after_cost_bps: float

    def __post_init__(self) -> None:
        for name in ("fee_bps", "funding_bps_per_8h", "impact_factor", "safety_margin_bps"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.0:
                raise ValueError(f"{name}={value!r} must be a finite number >= 0")
        if not 0.0 < self.participation_rate <= 1.0:
            raise ValueError(f"participation_rate={self.participation_rate!r} must be in (0, 1]")
        if not math.isfinite(self.static_spread_bps) or self.static_spread_bps < 0.0:
            raise ValueError(f"static_spread_bps={self.static_spread_bps!r} must be >= 0")
        if self.instrument == "spot" and self.funding_bps_per_8h != 0.0:
            raise ValueError(
                f"spot pays no funding; got funding_bps_per_8h={self.funding_bps_per_8h!r}"
            )

    @classmethod
    def from_config(cls, section: CostModelSection) -> "CostParams":
        """Parameters of the section's venue, liquidity side and instrument."""
        fees = section.fee_schedule[section.venue]
        fee = fees.maker_bps if section.liquidity_side == "maker" else fees.taker_bps
        funding = fees.funding_bps_per_8h if section.instrument == "perp" else 0.0
        return cls(
            venue=section.venue,
            liquidity_side=section.liquidity_side,
            instrument=section.instrument,
            fee_bps=fee,
            funding_bps_per_8h=funding,
            impact_factor=section.slippage_model.impact_factor,
            participation_rate=section.slippage_model.participation_rate,
            safety_margin_bps=section.safety_margin_bps,
            spread_source=section.spread_source,
            static_spread_bps=section.static_spread_bps,
            min_edge_after_cost_bps=section.min_edge_after_cost_bps,
        )

    def as_array(self) -> npt.NDArray[np.float64]:
        """The numba kernels' parameter layout (``kernel.C_*``)."""
        values = np.zeros(kernel.N_COST_PARAMS, dtype=np.float64)
        values[kernel.C_FEE_BPS] = self.fee_bps
        values[kernel.C_FUNDING_BPS_PER_8H] = self.funding_bps_per_8h
        values[kernel.C_IMPACT_FACTOR] = self.impact_factor
        values[kernel.C_PARTICIPATION_RATE] = self.participation_rate
        values[kernel.C_SAFETY_BPS] = self.safety_margin_bps
        values[kernel.C_MIN_EDGE_BPS] = self.min_edge_after_cost_bps
        return values


@dataclass(frozen=True, slots=True)
class BookTop:
    """Best bid and ask of a live order book, and where known its visible levels per side as
    (price, size) pairs, best first (``costs.kernel.book_walk_bps`` prices an order by them)."""

    best_bid: float
    best_ask: float
    bids: tuple[tuple[float, float], ...] = ()
    asks: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.best_bid) and self.best_bid > 0.0):
            raise ValueError(f"best_bid={self.best_bid!r} must be a finite price > 0")
        if not (math.isfinite(self.best_ask) and self.best_ask >= self.best_bid):
            raise ValueError(f"best_ask={self.best_ask!r} must be finite and >= best_bid")
        for name, levels, worse in (("bids", self.bids, -1.0), ("asks", self.asks, 1.0)):
            prices = [p for p, _ in levels]
            if any(not (math.isfinite(q) and q > 0.0) for _, q in levels):
                raise ValueError(f"{name} sizes must be finite and > 0, got {levels[:5]!r}")
            if any(worse * (b - a) < 0.0 for a, b in itertools.pairwise(prices)):
                raise ValueError(f"{name} must be ordered best first, got {prices[:5]!r}")

    def levels(self, side: Literal["bids", "asks"]) -> npt.NDArray[np.float64]:
        """The side's levels as rows of (price, size); zero rows when unknown."""
        rows = self.bids if side == "bids" else self.asks
        return np.array(rows, dtype=np.float64).reshape(len(rows), 2)

    @property
    def spread_bps(self) -> float:
        mid = 0.5 * (self.best_bid + self.best_ask)
        return (self.best_ask - self.best_bid) / mid * 1e4


@dataclass(frozen=True, slots=True)
class CostInputs:
    """What one cost estimate needs; quantities and volume in base units, spread is the full one."""

    order_qty: float
    bar_volume: float
    volatility_bps: float
    spread_bps: float
    holding_hours: float

    def __post_init__(self) -> None:
        for name in ("order_qty", "bar_volume", "volatility_bps", "spread_bps", "holding_hours"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.0:
                raise ValueError(f"{name}={value!r} must be a finite number >= 0")


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Round-trip cost of one position in bps of notional (see the module docstring); NaN
    throughout when an input (e.g. volatility) is unknown."""

    fee_bps: float
    spread_bps: float
    slippage_bps: float
    funding_bps: float
    safety_bps: float
    total_bps: float

    def __post_init__(self) -> None:
        parts = self.fee_bps + self.spread_bps + self.slippage_bps
        parts += self.funding_bps + self.safety_bps
        unknown = math.isnan(parts) and math.isnan(self.total_bps)
        if not unknown and not math.isclose(parts, self.total_bps, rel_tol=1e-12, abs_tol=1e-9):
            raise ValueError(f"total_bps={self.total_bps!r} must equal the sum of parts {parts!r}")

    @property
    def one_way_fee_bps(self) -> float:
        return self.fee_bps / 2.0

    @property
    def one_way_price_bps(self) -> float:
        """Half-spread plus slippage of one leg: how much worse than mid one fill is priced."""
        return (self.spread_bps + self.slippage_bps) / 2.0

    @classmethod
    def from_array(cls, components: npt.NDArray[np.float64]) -> "CostBreakdown":
        return cls(
            fee_bps=float(components[kernel.K_FEE]),
            spread_bps=float(components[kernel.K_SPREAD]),
            slippage_bps=float(components[kernel.K_SLIPPAGE]),
            funding_bps=float(components[kernel.K_FUNDING]),
            safety_bps=float(components[kernel.K_SAFETY]),
            total_bps=float(components[kernel.K_TOTAL]),
        )

    @classmethod
    def zero(cls) -> "CostBreakdown":
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class BookStatus(StrEnum):
    """What the live feed says about a coin's order book at decision time.

    ``NO_FEED``: the market data carries no books at all (a replay, the polling feed, a
    backtest): the historical rule applies, the same as the backtest's. ``FRESH``: a book newer
    than the staleness limit is attached. ``STALE`` / ``MISSING``: the feed streams books but
    this coin's is too old or has never arrived."""

    NO_FEED = "no_feed"
    FRESH = "fresh"
    STALE = "stale"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class SpreadChoice:
    """The full spread one decision uses, where it came from, and why a fallback was taken
    (empty when the configured source was used)."""

    spread_bps: float
    origin: SpreadOrigin
    fallback_reason: str = ""


def resolve_spread_bps(  # noqa: PLR0911 - one return per documented case
    params: CostParams,
    *,
    book: BookTop | None = None,
    candle_spread_bps: float | None = None,
    book_status: BookStatus = BookStatus.NO_FEED,
) -> SpreadChoice:
    """The full spread to use, where it came from and why a fallback was taken.

    ``websocket``/``api``: the live book when one is attached. When the feed streams books but
    this coin's is stale or missing, the candle estimate stands in (else the static value) with
    the reason ``book_stale``/``book_missing``; a feed without books (history) uses the static
    value, as the backtest does, with the reason ``no_book_feed``. ``candles``: the candle
    estimate where known, else the static value (``candle_estimate_unknown``). ``static``: the
    static value. At short bars candle estimates are biased upward by intrabar volatility
    (Corwin and Schultz 2012, sec. III): they stand in for a book only with a reason.
    """
    candle = _finite_candle_bps(candle_spread_bps)
    if params.spread_source in ("websocket", "api"):
        if book is not None:
            return SpreadChoice(book.spread_bps, SpreadOrigin.BOOK)
        if book_status in (BookStatus.STALE, BookStatus.MISSING):
            reason = f"book_{book_status.value}"
            if candle is not None:
                return SpreadChoice(candle, SpreadOrigin.CANDLES, reason)
            return SpreadChoice(params.static_spread_bps, SpreadOrigin.STATIC, reason)
        return SpreadChoice(params.static_spread_bps, SpreadOrigin.STATIC, "no_book_feed")
    if params.spread_source == "candles":
        if candle is not None:
            return SpreadChoice(candle, SpreadOrigin.CANDLES)
        return SpreadChoice(
            params.static_spread_bps, SpreadOrigin.STATIC, "candle_estimate_unknown"
        )
    return SpreadChoice(params.static_spread_bps, SpreadOrigin.STATIC)


def _finite_candle_bps(candle_spread_bps: float | None) -> float | None:
    if candle_spread_bps is None:
        return None
    if candle_spread_bps < 0.0:
        raise ValueError(f"candle_spread_bps={candle_spread_bps!r} must be >= 0")
    return candle_spread_bps if math.isfinite(candle_spread_bps) else None


def resolve_spread_bps_array(
    params: CostParams, candle_spread_bps: npt.ArrayLike | None, n_bars: int
) -> npt.NDArray[np.float64]:
    """Per-bar full spread for a historical simulation (no live book): the same rules."""
    static = np.full(n_bars, params.static_spread_bps, dtype=np.float64)
    if candle_spread_bps is None or params.spread_source != "candles":
        return static
    candle = np.asarray(candle_spread_bps, dtype=np.float64)
    if candle.shape != (n_bars,):
        raise ValueError(f"candle_spread_bps has shape {candle.shape}, expected ({n_bars},)")
    if np.any(candle < 0.0):
        raise ValueError("candle_spread_bps must be >= 0 where given (NaN means unknown)")
    return np.where(np.isfinite(candle), candle, static)


def estimate_costs(params: CostParams, inputs: CostInputs) -> CostBreakdown:
    """Round-trip :class:`CostBreakdown` of a position of ``inputs.order_qty``."""
    components = kernel.round_trip_costs(
        inputs.order_qty,
        inputs.bar_volume,
        inputs.volatility_bps,
        inputs.spread_bps / 2.0,
        inputs.holding_hours,
        params.as_array(),
    )
    return CostBreakdown.from_array(np.array(components))


def edge_after_cost_bps(expected_edge_bps: float, costs: CostBreakdown) -> float:
    """Net edge of a trade: its expected edge minus its round-trip cost."""
    if math.isnan(expected_edge_bps):
        raise ValueError("expected_edge_bps is NaN; pass a number (0 when there is no forecast)")
    return expected_edge_bps - costs.total_bps


def passes_cost_check(expected_edge_bps: float, costs: CostBreakdown, params: CostParams) -> bool:
    """True when the net edge reaches ``min_edge_after_cost_bps``."""
    return edge_after_cost_bps(expected_edge_bps, costs) >= params.min_edge_after_cost_bps
