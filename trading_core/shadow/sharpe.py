"""Tests that the challenger's Sharpe ratio exceeds the champion's on the same bars.

Two methods, both on per-bar Sharpe ratios ``SR = mu / sigma`` from sample moments (divisor n):

``"memmel"``: Jobson and Korkie (1981), "Performance Hypothesis Testing with the Sharpe and
Treynor Measures", Journal of Finance 36(4), with the correction of Memmel (2003),
"Performance Hypothesis Testing with the Sharpe Ratio", Finance Letters 1. For T i.i.d.
jointly normal pairs with correlation rho,

    z = (SR_n - SR_c) / sqrt(theta),
    theta = (2 - 2 rho + (SR_c^2 + SR_n^2 - 2 SR_c SR_n rho^2) / 2) / T,

with c the champion and n the challenger (new).

Closed form and fast, but it assumes normal, serially independent returns, which hourly crypto
strategy returns are not.

``"ledoit_wolf_bootstrap"``: Ledoit and Wolf (2008), "Robust Performance Hypothesis Testing with
the Sharpe Ratio", Journal of Empirical Finance 15(5), section 3.2. The difference is a function
of ``v = (mu_c, mu_n, E[r_c^2], E[r_n^2])``; its standard error is the delta method applied to a
HAC (here Newey–West Bartlett) long-run covariance of the moment series. The p-value comes from
the studentized circular block bootstrap (Politis and Romano 1992): blocks of ``block_length``
bars, each bootstrap statistic studentized by the "natural" block standard error of its own
sample (their eq. for Psi*), and compared with the studentized original statistic:

    p = (#{(D*_m - D) / s(D*_m) >= D / s(D)} + 1) / (M + 1).

The paper's test is two-sided; the one-sided p-values here are the same construction per tail.
Deviation: the original-sample HAC uses Bartlett weights with the Newey–West lag instead of the
paper's prewhitened quadratic-spectral kernel. Bootstrap samples are ceil(T / l) whole blocks
long (the studentized root does not depend on the sample length to first order). Replications
whose bootstrap Sharpe ratio is undefined (a constant resample) count against significance.
The resampling is vectorized numpy (arch's block bootstraps loop per replication in Python and
have no Ledoit–Wolf studentization); it is deterministic for a given ``seed``.
"""

import math
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from trading_core.errors import InsufficientDataError
from trading_core.shadow.paired import (
    FloatArray,
    TestResult,
    as_paired_returns,
    long_run_covariance,
    one_sided_normal,
    resolve_lag,
)

SharpeMethod = Literal["memmel", "ledoit_wolf_bootstrap"]
SHARPE_METHODS: Final[tuple[str, ...]] = ("memmel", "ledoit_wolf_bootstrap")
MIN_SHARPE_PERIODS: Final = 3
# upper bound on resampled values held at once (per series), to bound memory on 5m bars
_BOOTSTRAP_CHUNK_VALUES: Final = 2_000_000


def per_bar_sharpe(returns: FloatArray) -> float:
    """Mean over standard deviation (divisor n); raises when the series is constant."""
    sigma = float(returns.std())
    if not sigma > 0.0:
        raise InsufficientDataError(
            f"a return series of {returns.size} bars has zero variance "
            f"(all {float(returns[0])!r}): its Sharpe ratio is undefined"
        )
    return float(returns.mean()) / sigma


def sharpe_difference_test(
    champion: npt.ArrayLike,
    challenger: npt.ArrayLike,
    *,
    method: SharpeMethod = "memmel",
    block_length_bars: int = 24,
    bootstrap_samples: int = 2000,
    seed: int = 0,
    max_lag: int | None = None,
) -> TestResult:
    """Test of ``SR_challenger > SR_champion`` (per-bar Sharpe ratios, paired bars).

    ``method="memmel"`` uses the Jobson–Korkie/Memmel closed form; ``"ledoit_wolf_bootstrap"``
    the Ledoit–Wolf (2008) studentized circular block bootstrap with ``block_length_bars``,
    ``bootstrap_samples`` and ``seed`` (and ``max_lag`` for the original-sample HAC, None =
    Newey–West rule). ``estimate`` is the per-bar Sharpe difference; multiply by
    ``sqrt(bars_per_year)`` to annualize.
    """
    champ, chall = as_paired_returns(champion, challenger, min_periods=MIN_SHARPE_PERIODS)
    if method == "memmel":
        return _memmel_test(champ, chall)
    if method == "ledoit_wolf_bootstrap":
        if not 1 <= block_length_bars <= champ.size:
            raise ValueError(
                f"block_length_bars={block_length_bars} must lie in [1, {champ.size}] "
                f"for {champ.size} bars"
            )
        if bootstrap_samples < 1:
            raise ValueError(f"bootstrap_samples={bootstrap_samples} must be >= 1")
        lag = resolve_lag(max_lag, champ.size)
        return _ledoit_wolf_test(champ, chall, block_length_bars, bootstrap_samples, seed, lag)
    raise ValueError(f"method={method!r} is not supported; allowed: {', '.join(SHARPE_METHODS)}")


def _memmel_test(champ: FloatArray, chall: FloatArray) -> TestResult:
    sr_champ, sr_chall = per_bar_sharpe(champ), per_bar_sharpe(chall)
    rho = float(np.corrcoef(champ, chall)[0, 1])
    theta = (
        2.0 - 2.0 * rho + 0.5 * (sr_champ**2 + sr_chall**2 - 2.0 * sr_champ * sr_chall * rho**2)
    ) / champ.size
    difference = sr_chall - sr_champ
    standard_error = math.sqrt(max(theta, 0.0))
    z, p_better, p_worse = one_sided_normal(difference, standard_error)
    return TestResult(
        method="jobson_korkie_memmel",
        estimate=difference,
        standard_error=standard_error,
        statistic=z,
        p_value=p_better,
        p_value_worse=p_worse,
        n_periods=int(champ.size),
    )


def _sharpe_gradient(moments: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Sharpe difference and its gradient for moments (..., 4) = (mu_c, mu_n, g_c, g_n)."""
    mu_c, mu_n, g_c, g_n = (moments[..., k] for k in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma3_c = (g_c - mu_c**2) ** 1.5
        sigma3_n = (g_n - mu_n**2) ** 1.5
        difference = mu_n / np.sqrt(g_n - mu_n**2) - mu_c / np.sqrt(g_c - mu_c**2)
        gradient = np.stack(
            [-g_c / sigma3_c, g_n / sigma3_n, 0.5 * mu_c / sigma3_c, -0.5 * mu_n / sigma3_n],
            axis=-1,
        )
    return difference, gradient


def _ledoit_wolf_test(
    champ: FloatArray, chall: FloatArray, block: int, samples: int, seed: int, lag: int
) -> TestResult:
    for returns in (champ, chall):
        per_bar_sharpe(returns)  # raises early on a constant series
    series = np.column_stack([champ, chall, champ**2, chall**2])
    moments = series.mean(axis=0)
    difference_arr, gradient = _sharpe_gradient(moments)
    difference = float(difference_arr)
    psi = long_run_covariance(series - moments, lag)
    standard_error = math.sqrt(max(float(gradient @ psi @ gradient), 0.0) / champ.size)
    observed = difference / standard_error if standard_error > 0.0 else 0.0
    roots = _bootstrap_roots(champ, chall, difference, block, samples, seed)
    finite = np.isfinite(roots)
    # an undefined bootstrap statistic counts as at least as extreme in both tails (conservative)
    at_least_better = int(np.count_nonzero(~finite | (roots >= observed)))
    at_least_worse = int(np.count_nonzero(~finite | (roots <= observed)))
    return TestResult(
        method=f"ledoit_wolf_bootstrap(block={block}, samples={samples}, seed={seed}, lag={lag})",
        estimate=difference,
        standard_error=standard_error,
        statistic=observed,
        p_value=(at_least_better + 1) / (samples + 1),
        p_value_worse=(at_least_worse + 1) / (samples + 1),
        n_periods=int(champ.size),
    )


def _bootstrap_roots(
    champ: FloatArray, chall: FloatArray, difference: float, block: int, samples: int, seed: int
) -> FloatArray:
    """Studentized roots (D*_m - D) / s(D*_m) of the circular block bootstrap, shape (M,)."""
    n_periods = champ.size
    n_blocks = -(-n_periods // block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n_periods, size=(samples, n_blocks))
    chunk = max(1, _BOOTSTRAP_CHUNK_VALUES // (n_blocks * block))
    offsets = np.arange(block)
    roots = np.empty(samples, dtype=np.float64)
    for first in range(0, samples, chunk):
        index = (starts[first : first + chunk, :, None] + offsets) % n_periods
        roots[first : first + chunk] = _studentized_roots(champ[index], chall[index], difference)
    return roots


def _studentized_roots(champ: FloatArray, chall: FloatArray, difference: float) -> FloatArray:
    """Roots for resamples shaped (replications, blocks, block_length)."""
    block = champ.shape[2]
    length = champ.shape[1] * block
    # per-block sums of the four moment series: (replications, blocks, 4)
    block_sums = np.stack(
        [champ.sum(axis=2), chall.sum(axis=2), (champ**2).sum(axis=2), (chall**2).sum(axis=2)],
        axis=-1,
    )
    moments = block_sums.sum(axis=1) / length
    boot_difference, gradient = _sharpe_gradient(moments)
    # natural block estimator: Psi* = (1/b) sum_j zeta_j zeta_j', zeta_j = l^-1/2 sum(y* - v*)
    zeta = (block_sums - block * moments[:, None, :]) / math.sqrt(block)
    projected = np.einsum("rbk,rk->rb", zeta, gradient)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_se = np.sqrt((projected**2).mean(axis=1) / length)
        roots: FloatArray = (boot_difference - difference) / boot_se
    return roots
