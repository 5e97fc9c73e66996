"""Paired comparison of two per-bar net return series: the shared result type and the HAC test
of the mean difference.

Champion and challenger trade the same bars, so their returns are paired and correlated; the
test works on the per-bar difference ``d_t = challenger_t - champion_t`` (which removes the
common market component) and must allow for the serial correlation that persistent positions
put into ``d_t``. Its long-run variance is the Newey and West (1987) estimator, "A Simple,
Positive Semi-Definite, Heteroskedasticity and Autocorrelation Consistent Covariance Matrix",
Econometrica 55(3): a Bartlett kernel with weights ``1 - j / (L + 1)``, computed by
:func:`statsmodels.stats.sandwich_covariance.S_hac_simple`. The default lag ``L`` is Newey and
West's (1994, "Automatic Lag Selection in Covariance Matrix Estimation", Review of Economic
Studies 61(4)) rule of thumb ``floor(4 (n / 100) ** (2 / 9))``.

All p-values are one-sided and normal (large-sample) ones: ``p_value`` for "the challenger is
better", ``p_value_worse`` for "the challenger is worse".
"""

import math
from dataclasses import dataclass
from typing import ClassVar, Final

import numpy as np
import numpy.typing as npt

from trading_core.errors import DataValidationError, InsufficientDataError

FloatArray = npt.NDArray[np.float64]

MIN_PAIRED_PERIODS: Final = 2


@dataclass(frozen=True, slots=True)
class TestResult:
    """Outcome of one paired test; every difference is challenger minus champion, per bar."""

    __test__: ClassVar[bool] = False  # not a pytest test class despite the name

    method: str
    estimate: float
    standard_error: float
    statistic: float
    p_value: float
    p_value_worse: float
    n_periods: int

    def __post_init__(self) -> None:
        if not self.method:
            raise ValueError("method must name the test, got an empty string")
        for name in ("p_value", "p_value_worse"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value!r} must lie in [0, 1]")
        if not self.standard_error >= 0.0:
            raise ValueError(f"standard_error={self.standard_error!r} must be >= 0")
        if self.n_periods < MIN_PAIRED_PERIODS:
            raise ValueError(f"n_periods={self.n_periods} must be >= {MIN_PAIRED_PERIODS}")

    def swapped(self) -> "TestResult":
        """The same result read with champion and challenger exchanged."""
        return TestResult(
            method=self.method,
            estimate=-self.estimate,
            standard_error=self.standard_error,
            statistic=-self.statistic,
            p_value=self.p_value_worse,
            p_value_worse=self.p_value,
            n_periods=self.n_periods,
        )


def as_return_series(values: npt.ArrayLike, *, name: str) -> FloatArray:
    """A finite 1-D float64 copy of ``values``; raises naming the first bad entry."""
    array = np.array(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        first = int(bad[0])
        raise DataValidationError(
            f"{name} has {bad.size} non-finite values, first at index {first}: "
            f"{float(array[first])!r}; only finite returns are allowed",
            rows=[{"index": int(i), "value": float(array[i])} for i in bad[:10]],
        )
    return array


def as_paired_returns(
    champion: npt.ArrayLike, challenger: npt.ArrayLike, *, min_periods: int = MIN_PAIRED_PERIODS
) -> tuple[FloatArray, FloatArray]:
    """Validated champion and challenger series of equal length >= ``min_periods``."""
    champ = as_return_series(champion, name="champion returns")
    chall = as_return_series(challenger, name="challenger returns")
    if champ.shape != chall.shape:
        raise ValueError(
            f"champion ({champ.size} bars) and challenger ({chall.size} bars) must be paired "
            "bar by bar: same length"
        )
    if champ.size < min_periods:
        raise InsufficientDataError(
            f"{champ.size} paired bars; at least {min_periods} are needed for this test"
        )
    return champ, chall


def newey_west_lag(n_periods: int) -> int:
    """Newey and West (1994) rule-of-thumb Bartlett lag ``floor(4 (n / 100) ** (2 / 9))``."""
    if n_periods < 1:
        raise ValueError(f"n_periods={n_periods} must be >= 1")
    scaled: float = 4.0 * (n_periods / 100.0) ** (2.0 / 9.0)
    return math.floor(scaled)


def resolve_lag(max_lag: int | None, n_periods: int) -> int:
    """``max_lag`` checked against the sample, or the Newey–West rule when it is None."""
    lag = newey_west_lag(n_periods) if max_lag is None else max_lag
    if not 0 <= lag < n_periods:
        raise ValueError(f"max_lag={lag} must lie in [0, {n_periods - 1}] for {n_periods} bars")
    return lag


def long_run_covariance(centered: FloatArray, max_lag: int) -> FloatArray:
    """Newey–West (Bartlett) long-run covariance of a centered (n,) or (n, k) series, per bar."""
    # imported where used: statsmodels and scipy.stats at module level cost every process that
    # imports the shadow package (each Dagster step, Hamilton) ~1 s (bench/cli_startup.py)
    from statsmodels.stats.sandwich_covariance import S_hac_simple

    n_periods = centered.shape[0]
    covariance: FloatArray = np.asarray(S_hac_simple(centered, nlags=max_lag), dtype=np.float64)
    per_bar: FloatArray = covariance / n_periods
    return per_bar


def one_sided_normal(estimate: float, standard_error: float) -> tuple[float, float, float]:
    """(z, p for estimate > 0, p for estimate < 0); a zero standard error gives z = ±inf or 0."""
    from scipy.stats import norm

    if standard_error > 0.0:
        z = estimate / standard_error
    else:
        z = 0.0 if estimate == 0.0 else math.copysign(math.inf, estimate)
    return z, float(norm.sf(z)), float(norm.cdf(z))


def paired_mean_difference_test(
    champion: npt.ArrayLike, challenger: npt.ArrayLike, *, max_lag: int | None = None
) -> TestResult:
    """HAC test that the challenger's mean per-bar net return exceeds the champion's.

    ``estimate`` is the mean of ``d_t = challenger_t - champion_t``; its standard error is
    ``sqrt(LRV / n)`` with ``LRV = gamma_0 + 2 sum_{j<=L} (1 - j / (L + 1)) gamma_j`` (Newey and
    West 1987; sample autocovariances with divisor n), identical to statsmodels' OLS of ``d`` on
    a constant with ``cov_type="HAC"``, ``maxlags=L`` and ``use_correction=False``. ``max_lag``
    None picks ``L`` by the Newey–West (1994) rule; 0 gives the i.i.d. (White) standard error.
    """
    champ, chall = as_paired_returns(champion, challenger)
    lag = resolve_lag(max_lag, champ.size)
    difference = chall - champ
    mean_difference = float(difference.mean())
    long_run_variance = float(long_run_covariance(difference - mean_difference, lag)[0, 0])
    # Bartlett weights keep the estimate >= 0 in exact arithmetic; clip rounding noise only
    standard_error = math.sqrt(max(long_run_variance, 0.0) / difference.size)
    z, p_better, p_worse = one_sided_normal(mean_difference, standard_error)
    return TestResult(
        method=f"hac_mean_difference(newey_west, lag={lag})",
        estimate=mean_difference,
        standard_error=standard_error,
        statistic=z,
        p_value=p_better,
        p_value_worse=p_worse,
        n_periods=int(difference.size),
    )
