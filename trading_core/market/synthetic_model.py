"""The numpy simulation behind :class:`~trading_core.market.synthetic.SyntheticMarket`.

One ``(n_coins, n_bars)`` array per quantity, vectorized over coins; the only Python loop runs
over time for the recursive parts (the regime Markov chain, momentum and reversion). Every random
quantity comes from its own child stream of ``SeedSequence(seed)`` and is drawn as one C-ordered
``(n_coins, ...)`` block, so row ``i`` (coin ``i``) is the same whatever ``n_coins`` is: a coin's
bars never depend on which other coins exist.

Model (per coin, hourly):
- regime: a Markov chain over TREND / RANGE / PANIC / ILLIQUID with mean durations
  120 / 168 / 12 / 48 h; illiquid coins enter ILLIQUID more often; a BTC panic makes every coin
  far more likely to panic (contagion), in the spirit of Hamilton's (1989) regime switching.
- returns: ``r = beta * r_BTC + own``, with ``own = sigma_regime * t4 + jumps`` (Student-t,
  4 degrees of freedom, unit variance; Poisson jumps in PANIC) plus, in ``structured`` mode,
  momentum in TREND (AR(1) coefficient ``0.15 * strength`` and a drift of ``0.04 * strength``
  sigma per bar in a random direction per trend spell) and Ornstein–Uhlenbeck reversion in RANGE
  toward an exponential moving anchor (``0.08 * strength`` of the gap per bar). ``no_edge`` mode
  keeps the same regimes and volatility profile but returns are independent draws.
- candles: the open and close trade at the bid or the ask around the mid path (Roll, 1984), the
  high is an ask and the low a bid, so candle spread estimators (EDGE, Corwin–Schultz) see the
  coin's spread; volume follows liquidity, an intraday cycle, |return| and the regime.
"""

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

TREND, RANGE, PANIC, ILLIQUID = 0, 1, 2, 3
MEAN_DURATION_H: Final = np.array([120.0, 168.0, 12.0, 48.0])
EXIT_MIX: Final = np.array(
    [
        [0.0, 0.70, 0.15, 0.15],
        [0.60, 0.0, 0.15, 0.25],
        [0.30, 0.60, 0.0, 0.10],
        [0.25, 0.65, 0.10, 0.0],
    ]
)
INITIAL_MIX: Final = np.array([0.35, 0.45, 0.05, 0.15])
PANIC_CONTAGION_PER_H: Final = 0.05
VOL_MULT: Final = np.array([1.0, 0.7, 3.0, 0.6])
VOLUME_MULT: Final = np.array([1.2, 0.9, 2.5, 0.15])
SPREAD_MULT: Final = np.array([1.0, 1.0, 2.0, 3.0])
STUDENT_DF: Final = 4.0
LIQUIDITY_REF_COINS: Final = 450
ANCHOR_ALPHA: Final = 1.0 / 48.0
BASE_FUNDING: Final = 0.0001
_STREAMS: Final = (
    "params",
    "regime",
    "direction",
    "eps",
    "jump_u",
    "jump_z",
    "range",
    "volume",
    "funding",
)


@dataclass(frozen=True, slots=True)
class CoinParams:
    """Per-coin constants, each an ``(n_coins,)`` array."""

    daily_volume_usd: F64
    base_spread_bps: F64
    listing_age_days: I64
    start_price: F64
    hourly_vol: F64
    beta: F64


@dataclass(frozen=True, slots=True)
class SimulatedMarket:
    """All coins, all bars. ``first_bar[i]`` is coin i's listing bar; earlier bars are unused."""

    timestamps_ms: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    regimes: npt.NDArray[np.int8]
    first_bar: I64
    params: CoinParams
    funding_ms: I64
    funding_rate: F64


def coin_params(rng: np.random.Generator, n_coins: int) -> CoinParams:
    """Liquidity by a power law in a uniform rank (BTC and ETH fixed at the top), spreads that
    widen as volume falls, listing ages with a young tail, log-uniform prices."""
    u = rng.random((n_coins, 8))
    rank = 3.0 + u[:, 0] * LIQUIDITY_REF_COINS
    volume = 3e10 * rank**-1.4 * np.exp(-rank / 150.0) * np.exp(0.4 * _probit(u[:, 1]))
    age = np.where(
        u[:, 2] < 0.05,
        1 + u[:, 3] * 29,
        np.where(u[:, 2] < 0.15, 30 + u[:, 3] * 335, 365 + u[:, 3] * 2135),
    )
    price = 10.0 ** (-4.0 + u[:, 4] * 6.7)
    beta = 0.6 + 0.8 * u[:, 5]
    fixed = {0: (2.0e10, 3000, 60_000.0, 0.0), 1: (1.0e10, 3000, 3_000.0, 1.1)}
    for i, (vol_usd, age_d, px, b) in fixed.items():
        if i < n_coins:
            volume[i], age[i], price[i], beta[i] = vol_usd, age_d, px, b
    spread = np.clip(1.5 * (volume / 1e9) ** -0.35 * np.exp(0.25 * _probit(u[:, 6])), 0.3, 500.0)
    hourly_vol = 0.006 * (volume / 1e10) ** -0.1 * np.exp(0.2 * _probit(u[:, 7]))
    return CoinParams(volume, spread, age.astype(np.int64), price, hourly_vol, beta)


def simulate(
    *, n_coins: int, n_bars: int, end_ms: int, seed: int, structured: bool, strength: float
) -> SimulatedMarket:
    """Simulate the whole market; deterministic in its arguments."""
    streams = dict(zip(_STREAMS, np.random.SeedSequence(seed).spawn(len(_STREAMS)), strict=True))
    rng = {k: np.random.default_rng(s) for k, s in streams.items()}
    params = coin_params(rng["params"], n_coins)
    regimes = _simulate_regimes(rng["regime"], params.daily_volume_usd, n_bars)
    sigma = params.hourly_vol[:, None] * VOL_MULT[regimes]
    shocks = _shocks(rng, regimes, sigma)
    if structured:
        own = _structured_returns(rng["direction"], regimes, shocks, params.hourly_vol, strength)
    else:
        own = shocks
    returns = own + params.beta[:, None] * own[0][None, :]
    returns[0] = own[0]
    log_close = np.log(params.start_price)[:, None] + np.cumsum(returns, axis=1)
    spread_bps = params.base_spread_bps[:, None] * SPREAD_MULT[regimes]
    open_, high, low, close = _candles(rng["range"], log_close, sigma, spread_bps)
    volume = _volume(rng["volume"], params, regimes, shocks / sigma, close, end_ms, n_bars)
    first_bar = np.maximum(0, n_bars - params.listing_age_days * 24).astype(np.int64)
    timestamps = end_ms - 3_600_000 * np.arange(n_bars, 0, -1, dtype=np.int64)
    funding_ms, funding = _funding(rng["funding"], close, timestamps, structured, strength)
    return SimulatedMarket(
        timestamps, open_, high, low, close, volume, regimes, first_bar, params, funding_ms, funding
    )


def _funding(
    rng: np.random.Generator, close: F64, timestamps_ms: I64, structured: bool, strength: float
) -> tuple[I64, F64]:
    """8h funding (fraction) stamped 00/08/16 UTC: a base rate, noise and, in structured mode,
    a premium that follows the last 8h return (longs pay more in rallies)."""
    hour = (timestamps_ms // 3_600_000) % 24
    idx = np.flatnonzero(hour % 8 == 0)
    idx = idx[idx >= 8]
    noise = 0.00005 * rng.standard_normal((close.shape[0], idx.size))
    premium = 0.01 * strength * np.log(close[:, idx] / close[:, idx - 8]) if structured else 0.0
    rate = np.clip(BASE_FUNDING + premium + noise, -0.0075, 0.0075)
    return timestamps_ms[idx], rate


def _probit(u: F64) -> F64:
    from scipy.special import ndtri

    result: F64 = ndtri(np.clip(u, 1e-9, 1 - 1e-9))
    return result


def _transition_cums(daily_volume_usd: F64) -> F64:
    """Cumulative transition rows, shape (2 [BTC calm, BTC panic], n_coins, 4, 4)."""
    n = daily_volume_usd.size
    boost = np.clip((1e8 / daily_volume_usd) ** 0.25, 0.5, 4.0)
    mix = np.broadcast_to(EXIT_MIX, (n, 4, 4)).copy()
    mix[:, :, ILLIQUID] *= boost[:, None]
    mix[:, ILLIQUID, ILLIQUID] = 0.0
    mix /= mix.sum(axis=2, keepdims=True)
    leave = 1.0 / MEAN_DURATION_H
    calm = mix * leave[None, :, None]
    calm[:, np.arange(4), np.arange(4)] = 1.0 - leave
    panic = calm.copy()
    for state in (TREND, RANGE, ILLIQUID):
        panic[:, state, PANIC] += PANIC_CONTAGION_PER_H
        panic[:, state, state] -= PANIC_CONTAGION_PER_H
    cums = np.cumsum(np.stack([calm, panic]), axis=3)
    cums[..., -1] = 1.0
    return cums


def _simulate_regimes(
    rng: np.random.Generator, daily_volume_usd: F64, n_bars: int
) -> npt.NDArray[np.int8]:
    n = daily_volume_usd.size
    u = rng.random((n, n_bars), dtype=np.float32)
    cums = _transition_cums(daily_volume_usd)
    coins = np.arange(n)
    regimes = np.empty((n, n_bars), dtype=np.int8)
    state = np.searchsorted(np.cumsum(INITIAL_MIX), u[:, 0]).astype(np.int64)
    regimes[:, 0] = state
    for t in range(1, n_bars):
        btc_panic = int(state[0] == PANIC)
        rows = cums[btc_panic, coins, state]
        state = (u[:, t, None] > rows).sum(axis=1)
        regimes[:, t] = state
    return regimes


def _shocks(rng: dict[str, np.random.Generator], regimes: npt.NDArray[np.int8], sigma: F64) -> F64:
    shape = regimes.shape
    eps = rng["eps"].standard_t(STUDENT_DF, size=shape) * np.sqrt((STUDENT_DF - 2) / STUDENT_DF)
    jump_hit = (rng["jump_u"].random(shape, dtype=np.float32) < 0.03) & (regimes == PANIC)
    jumps = np.where(jump_hit, 4.0 * rng["jump_z"].standard_normal(shape), 0.0)
    shocks: F64 = sigma * (eps + jumps)
    return shocks


def _structured_returns(
    rng: np.random.Generator,
    regimes: npt.NDArray[np.int8],
    shocks: F64,
    hourly_vol: F64,
    strength: float,
) -> F64:
    """Momentum (AR(1) + drift) in TREND, reversion to a moving anchor in RANGE."""
    n, n_bars = regimes.shape
    flips = np.where(rng.random((n, n_bars), dtype=np.float32) < 0.5, -1.0, 1.0)
    phi = min(0.15 * strength, 0.6)
    kappa = min(0.08 * strength, 0.5)
    drift = 0.04 * strength * hourly_vol
    out = np.empty_like(shocks)
    prev = np.zeros(n)
    level = np.zeros(n)
    anchor = np.zeros(n)
    direction = flips[:, 0].astype(np.float64)
    prev_regime = regimes[:, 0]
    for t in range(n_bars):
        reg = regimes[:, t]
        direction = np.where((reg == TREND) & (prev_regime != TREND), flips[:, t], direction)
        trend = reg == TREND
        r = shocks[:, t] + np.where(trend, phi * prev + direction * drift, 0.0)
        r -= np.where(reg == RANGE, kappa * (level - anchor), 0.0)
        out[:, t] = r
        level += r
        anchor += ANCHOR_ALPHA * (level - anchor)
        prev = r
        prev_regime = reg
    return out


def _candles(
    rng: np.random.Generator, log_mid: F64, sigma: F64, spread_bps: F64
) -> tuple[F64, F64, F64, F64]:
    """Trade-price candles around the mid path (Roll, 1984): the open and the close trade at the
    bid or the ask (independent random sides), the high is an ask and the low a bid."""
    n, n_bars = log_mid.shape
    draws = np.moveaxis(rng.random((n, 4, n_bars), dtype=np.float32), 1, 0)
    half_spread = 0.5 * spread_bps / 10_000.0
    mid_close = np.exp(log_mid)
    mid_open = np.empty_like(mid_close)
    mid_open[:, 1:] = mid_close[:, :-1]
    mid_open[:, 0] = mid_close[:, 0]
    open_ = mid_open * (1.0 + np.where(draws[0] < 0.5, -half_spread, half_spread))
    close = mid_close * (1.0 + np.where(draws[1] < 0.5, -half_spread, half_spread))
    # Rayleigh excursions beyond the bar's mids: a |normal|-like tail.
    high = np.maximum(mid_open, mid_close) * np.exp(
        0.6 * sigma * np.sqrt(-2.0 * np.log1p(-draws[2]))
    )
    high *= 1.0 + half_spread
    low = np.minimum(mid_open, mid_close) * np.exp(
        -0.6 * sigma * np.sqrt(-2.0 * np.log1p(-draws[3]))
    )
    low *= 1.0 - half_spread
    return open_, high, low, close


def _volume(
    rng: np.random.Generator,
    params: CoinParams,
    regimes: npt.NDArray[np.int8],
    z: F64,
    close: F64,
    end_ms: int,
    n_bars: int,
) -> F64:
    hours = ((end_ms // 3_600_000 - np.arange(n_bars, 0, -1)) % 24).astype(np.float64)
    intraday = 1.0 + 0.3 * np.sin(2.0 * np.pi * (hours - 8.0) / 24.0)
    activity = np.exp(0.25 * np.minimum(np.abs(z), 6.0) - 0.2)
    noise = np.exp(0.3 * rng.standard_normal(regimes.shape) - 0.045)
    quote = (
        (params.daily_volume_usd[:, None] / 24.0)
        * intraday[None, :]
        * activity
        * noise
        * VOLUME_MULT[regimes]
    )
    base: F64 = quote / close
    return base
