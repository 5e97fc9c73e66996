"""Bid-ask spread estimates from candles, as causal polars expressions.

Two published low-frequency estimators, each computed on the pair of bars (t-1, t) so that the
value at bar t uses only bars <= t, then averaged over a trailing window of ``window_bars`` pairs:

* Corwin, S. A. and Schultz, P. (2012), "A Simple Way to Estimate Bid-Ask Spreads from Daily High
  and Low Prices", Journal of Finance 67(2), 719-760. A high is (nearly always) a buy at the ask and
  a low a sell at the bid; the variance part of ln(H/L) grows with the interval while the spread
  part does not, which the two-bar estimator separates::

      beta  = ln(H_{t-1}/L_{t-1})^2 + ln(H_t/L_t)^2
      gamma = ln(max(H_{t-1}, H_t) / min(L_{t-1}, L_t))^2
      alpha = (sqrt(2 beta) - sqrt(beta)) / (3 - 2 sqrt 2) - sqrt(gamma / (3 - 2 sqrt 2))
      S     = 2 (e^alpha - 1) / (1 + e^alpha)

  With the paper's adjustment for a move between the bars (its "overnight" correction; for a
  24/7 market it only fires across a missing candle): when L_t > C_{t-1} (H_t < C_{t-1}) bar t's
  high and low are shifted down (up) by the gap. Negative two-bar estimates are set to zero
  before averaging, the paper's main variant.

* Abdi, F. and Ranaldo, A. (2017), "A Simple Estimation of Bid-Ask Spreads from Daily Close,
  High, and Low Prices", Review of Financial Studies 30(12), 4437-4480. With log close c and
  log mid-range eta = (ln H + ln L) / 2, the two-bar moment is
  ``s^2 = 4 (c_{t-1} - eta_{t-1}) (c_{t-1} - eta_t)`` and the window estimate is
  ``S = sqrt(max(mean(s^2), 0))`` (the paper's averaged-moment variant: average first, then
  floor at zero and take the root).

Both return the proportional spread in basis points of the mid price; the first
``window_bars`` bars of a series are null (one bar for the pair, ``window_bars - 1`` more for
the mean).
"""

import math
from typing import Final

import polars as pl

_BPS: Final = 10_000.0
_CS_K: Final = 3.0 - 2.0 * math.sqrt(2.0)


def _check_window(window_bars: int) -> None:
    if isinstance(window_bars, bool) or not isinstance(window_bars, int) or window_bars < 1:
        raise ValueError(f"window_bars {window_bars!r} must be an integer >= 1")


def corwin_schultz_pair_spread(
    *, high: str = "high", low: str = "low", close: str = "close"
) -> pl.Expr:
    """Corwin-Schultz spread (fraction of mid, floored at 0) of the bar pair ending at each bar."""
    h, lo, c_prev = pl.col(high), pl.col(low), pl.col(close).shift(1)
    h_prev, lo_prev = pl.col(high).shift(1), pl.col(low).shift(1)
    # The paper's correction for a move between the bars: L_t > C_{t-1} and H_t < C_{t-1}
    # exclude each other, so at most one term is non-zero.
    gap = (lo - c_prev).clip(lower_bound=0.0) + (h - c_prev).clip(upper_bound=0.0)
    log_range_adj = ((h - gap) / (lo - gap)).log()
    beta = (h_prev / lo_prev).log().pow(2) + log_range_adj.pow(2)
    gamma = (pl.max_horizontal(h_prev, h - gap) / pl.min_horizontal(lo_prev, lo - gap)).log().pow(2)
    # sqrt(2 beta) - sqrt(beta) = (sqrt 2 - 1) sqrt(beta); 2 (e^a - 1) / (1 + e^a) = 2 tanh(a / 2):
    # the same formula with each sub-expression evaluated once.
    alpha = beta.sqrt() * ((math.sqrt(2.0) - 1.0) / _CS_K) - (gamma / _CS_K).sqrt()
    spread = 2.0 * (alpha / 2.0).tanh()
    return spread.clip(lower_bound=0.0)


def corwin_schultz_spread_bps(
    window_bars: int = 24, *, high: str = "high", low: str = "low", close: str = "close"
) -> pl.Expr:
    """Trailing mean of the Corwin-Schultz (2012) two-bar spreads, in bps of mid."""
    _check_window(window_bars)
    pair = corwin_schultz_pair_spread(high=high, low=low, close=close)
    return pair.rolling_mean(window_bars, min_samples=window_bars) * _BPS


def abdi_ranaldo_pair_moment(
    *, high: str = "high", low: str = "low", close: str = "close"
) -> pl.Expr:
    """Abdi-Ranaldo two-bar moment ``4 (c_{t-1} - eta_{t-1}) (c_{t-1} - eta_t)`` at each bar t."""
    eta = (pl.col(high).log() + pl.col(low).log()) / 2.0
    c_prev = pl.col(close).log().shift(1)
    return 4.0 * (c_prev - eta.shift(1)) * (c_prev - eta)


def abdi_ranaldo_spread_bps(
    window_bars: int = 24, *, high: str = "high", low: str = "low", close: str = "close"
) -> pl.Expr:
    """Abdi-Ranaldo (2017) spread over a trailing window of two-bar moments, in bps of mid."""
    _check_window(window_bars)
    moment = abdi_ranaldo_pair_moment(high=high, low=low, close=close)
    mean_moment = moment.rolling_mean(window_bars, min_samples=window_bars)
    return mean_moment.clip(lower_bound=0.0).sqrt() * _BPS
