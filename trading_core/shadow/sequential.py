"""Per-look significance for a shadow test that is re-evaluated as it runs (repeated looks).

Evaluating the promotion test every day between ``min_duration_days`` and ``max_duration_days``
and promoting at the first success inflates the false-promotion rate well above ``alpha``
(for the two tests alone: 0.090 instead of 0.05 for daily looks over days 14..28, and 0.034
with the boundary below; bench/shadow_false_promotion.py, 500 replications). The cure is a
group-sequential boundary of the O'Brien and Fleming (1979) type ("A Multiple Testing Procedure
for Clinical Trials", Biometrics 35(3)): with information fraction
``t = duration / max_duration`` and ``Z_t`` approximately ``B(t) / sqrt(t)`` for a Brownian motion
``B`` (the test statistics are smooth functions of running means), promote at a look only when

    Z_t >= c / sqrt(t),   i.e.   p_t < 1 - Phi(c / sqrt(t)),

with ``c`` chosen so that a Brownian motion monitored CONTINUOUSLY over ``[t0, 1]``,
``t0 = min_duration / max_duration``, crosses ``c`` with probability ``alpha``. By the reflection
principle (e.g. Siegmund 1985, *Sequential Analysis*, ch. 3), conditioning on ``B(t0) = x``,

    P(cross) = (1 - Phi(c / sqrt(t0)))
               + int_{-inf}^{c} phi_{t0}(x) 2 (1 - Phi((c - x) / sqrt(1 - t0))) dx,

``phi_{t0}`` the N(0, t0) density.

Continuous monitoring bounds every schedule of looks in ``[t0, 1]`` (daily, hourly, irregular),
so the caller need not declare its look schedule; for daily looks the overall level is below
``alpha``. It is the Lan and DeMets (1983, Biometrika 70(3)) O'Brien–Fleming-type spending
function ``2 - 2 Phi(z_{alpha/2} / sqrt(t))`` when ``t0 -> 0``. For ``t0 = 0.5`` and
``alpha = 0.05``: ``c = 1.9545``, per-look levels 0.0029 on day 14 and 0.0253 on day 28.
"""

import math
from functools import lru_cache

_START_FRACTION_ONE = 1.0 - 1e-12  # t0 at 1 is a single look: the fixed-sample boundary
_U_RANGE = 40.0
_SQRT_2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def crossing_probability(boundary: float, start_fraction: float) -> float:
    """P(sup of a standard Brownian motion over [start_fraction, 1] >= ``boundary``)."""
    # scipy is imported where used: scipy.stats at module level costs every process importing
    # the shadow package (each Dagster step, Hamilton) ~1 s (bench/cli_startup.py)
    from scipy import integrate
    from scipy.stats import norm

    if not 0.0 < start_fraction <= 1.0:
        raise ValueError(f"start_fraction={start_fraction!r} must lie in (0, 1]")
    if start_fraction >= _START_FRACTION_ONE:
        return float(norm.sf(boundary))
    sd_start = math.sqrt(start_fraction)
    sd_rest = math.sqrt(1.0 - start_fraction)

    def crosses_later(u: float) -> float:  # u = B(t0) / sqrt(t0), standard normal
        # plain math (not scipy.stats) because quad calls this hundreds of times per solve
        density = math.exp(-0.5 * u * u) / _SQRT_2PI
        return density * math.erfc((boundary - sd_start * u) / (sd_rest * _SQRT_2))

    # the standard normal density is below 1e-300 beyond |u| = 37: a finite range keeps quad on
    # the mass even when t0 is tiny and boundary / sqrt(t0) is huge
    later, _ = integrate.quad(crosses_later, -_U_RANGE, min(boundary / sd_start, _U_RANGE))
    return float(norm.sf(boundary / sd_start)) + float(later)


@lru_cache(maxsize=64)
def obrien_fleming_constant(alpha: float, start_fraction: float) -> float:
    """The ``c`` with ``crossing_probability(c, start_fraction) == alpha``."""
    from scipy import optimize
    from scipy.stats import norm

    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha={alpha!r} must lie in (0, 0.5)")
    if not 0.0 < start_fraction <= 1.0:
        raise ValueError(f"start_fraction={start_fraction!r} must lie in (0, 1]")
    fixed = float(norm.isf(alpha))  # the single-look boundary is the lower bound for c
    if start_fraction >= _START_FRACTION_ONE:
        return fixed
    return float(
        optimize.brentq(
            lambda c: crossing_probability(c, start_fraction) - alpha, fixed, fixed + 2.0
        )
    )


def sequential_alpha(
    alpha: float, *, duration_days: float, min_duration_days: float, max_duration_days: float
) -> float:
    """One-sided per-look level at ``duration_days`` keeping the overall level <= ``alpha``."""
    from scipy.stats import norm

    if not 0.0 < min_duration_days <= max_duration_days:
        raise ValueError(
            f"need 0 < min_duration_days={min_duration_days!r} <= "
            f"max_duration_days={max_duration_days!r}"
        )
    start = min_duration_days / max_duration_days
    fraction = min(max(duration_days / max_duration_days, start), 1.0)
    boundary = obrien_fleming_constant(alpha, start)
    return float(norm.sf(boundary / math.sqrt(fraction)))
