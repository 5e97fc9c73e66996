"""Expected return from the consensus when no learned model forecasts it.

Grinold's "alpha = IC x volatility x score" (Grinold and Kahn, "Active Portfolio Management",
2nd ed. 2000, ch. 10): the forecast over the horizon is the consensus score times the return
volatility over that horizon times a coefficient calibrated on past data (least squares through
the origin of the volatility-scaled forward return on the score; strictly a regression slope,
called the IC here as in Grinold's formula), kept only when positive and significant.
"""

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def consensus_expected_return_bps(
    score: npt.ArrayLike,
    volatility_bps: npt.ArrayLike,
    horizon_bars: int,
    information_coefficient: float | npt.ArrayLike,
) -> FloatArray:
    """Signed forecast (bps) of the return over ``horizon_bars``; 0 where volatility is unknown.

    ``volatility_bps`` is one bar's return standard deviation, so ``sqrt(horizon)`` scales it
    to the horizon (random-walk scaling). ``information_coefficient`` is one number or one per
    bar (e.g. the regime's, from :func:`calibrate_information_coefficients_by_regime`).
    """
    ic = np.asarray(information_coefficient, dtype=np.float64)
    if horizon_bars < 1 or not np.all(np.isfinite(ic)):
        raise ValueError(
            f"horizon_bars={horizon_bars!r} must be >= 1 and information coefficients finite"
        )
    s = np.asarray(score, dtype=np.float64)
    vol = np.asarray(volatility_bps, dtype=np.float64)
    forecast = ic * s * vol * math.sqrt(horizon_bars)
    result: FloatArray = np.where(np.isfinite(forecast), forecast, 0.0)
    return result


def calibrate_information_coefficient(
    score: npt.ArrayLike,
    forward_return_bps: npt.ArrayLike,
    volatility_bps: npt.ArrayLike,
    horizon_bars: int,
    *,
    min_samples: int = 30,
    min_t_stat: float = 2.0,
) -> float:
    """IC fitted on past bars where the score is non-zero; 0 unless it is positive and
    significant: a consensus that did not demonstrably predict gets no edge.

    Least squares through the origin of ``return / (volatility x sqrt(horizon))`` on the score.
    The t-statistic's standard error is scaled by ``sqrt(horizon)`` because consecutive labels
    overlap by ``horizon - 1`` bars (a Hansen-Hodrick style correction). Returns 0 with fewer
    than ``min_samples`` usable bars.
    """
    s = np.asarray(score, dtype=np.float64)
    ret = np.asarray(forward_return_bps, dtype=np.float64)
    vol = np.asarray(volatility_bps, dtype=np.float64)
    if not s.shape == ret.shape == vol.shape:
        raise ValueError(f"shapes differ: score {s.shape}, returns {ret.shape}, vol {vol.shape}")
    scaled = ret / (vol * math.sqrt(horizon_bars))
    usable = np.isfinite(scaled) & np.isfinite(s) & (s != 0.0) & (vol > 0.0)
    n = int(usable.sum())
    if n < max(min_samples, 2):
        return 0.0
    x, y = s[usable], scaled[usable]
    slope = float((x @ y) / (x @ x))
    residual = y - slope * x
    standard_error = math.sqrt(float(residual @ residual) / (n - 1) / float(x @ x))
    t_stat = slope / (standard_error * math.sqrt(horizon_bars)) if standard_error > 0 else 0.0
    return slope if slope > 0.0 and t_stat >= min_t_stat else 0.0


def calibrate_information_coefficients_by_regime(
    score: npt.ArrayLike,
    forward_return_bps: npt.ArrayLike,
    volatility_bps: npt.ArrayLike,
    regimes: npt.ArrayLike,
    horizon_bars: int,
    *,
    n_regimes: int = 4,
    min_samples: int = 30,
    min_t_stat: float = 2.0,
) -> FloatArray:
    """One IC per regime code (each fitted on that regime's bars, floored at 0): the engines
    that vote differ by regime, and so does how well the consensus predicts."""
    codes = np.asarray(regimes).astype(np.int64)
    s = np.asarray(score, dtype=np.float64)
    if codes.shape != s.shape:
        raise ValueError(f"regimes {codes.shape} and score {s.shape} must have one shape")
    ret = np.asarray(forward_return_bps, dtype=np.float64)
    vol = np.asarray(volatility_bps, dtype=np.float64)
    return np.array(
        [
            calibrate_information_coefficient(
                s[codes == g], ret[codes == g], vol[codes == g], horizon_bars,
                min_samples=min_samples, min_t_stat=min_t_stat,
            )
            for g in range(n_regimes)
        ]
    )  # fmt: skip
