"""HAC paired mean-difference test: hand-computed and statsmodels known answers, validation."""

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.signal import lfilter
from scipy.stats import norm

from trading_core.errors import DataValidationError, InsufficientDataError
from trading_core.shadow import TestResult, newey_west_lag, paired_mean_difference_test


def _ar1_pair(seed: int, n: int, phi: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal((n, 2)) * 0.01
    series = lfilter([1.0], [1.0, -phi], shocks, axis=0)
    return series[:, 0], series[:, 1] + 0.0005


@pytest.mark.parametrize(
    ("max_lag", "standard_error", "z"),
    [
        # d = [1, 3, 2, 6], mean 3, u = [-2, 0, -1, 3]; gamma0 = 14/4 = 3.5,
        # gamma1 = (0*-2 + -1*0 + 3*-1)/4 = -0.75; Bartlett weight at lag 1 of L=1 is 1/2:
        # LRV = 3.5 + 2 * 0.5 * -0.75 = 2.75, se = sqrt(2.75 / 4)
        (1, math.sqrt(2.75 / 4), 3.0 / math.sqrt(2.75 / 4)),
        # L=0: LRV = gamma0 = 3.5 (White / i.i.d. standard error with divisor n)
        (0, math.sqrt(3.5 / 4), 3.0 / math.sqrt(3.5 / 4)),
    ],
)
def test_tiny_series_hand_computed_known_answer(
    max_lag: int, standard_error: float, z: float
) -> None:
    result = paired_mean_difference_test(
        [5.0, 5.0, 5.0, 5.0], [6.0, 8.0, 7.0, 11.0], max_lag=max_lag
    )
    assert result.estimate == pytest.approx(3.0, rel=1e-12)
    assert result.standard_error == pytest.approx(standard_error, rel=1e-12)
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(norm.sf(z), rel=1e-9)
    assert result.p_value_worse == pytest.approx(norm.cdf(z), rel=1e-12)
    assert result.n_periods == 4
    assert result.method == f"hac_mean_difference(newey_west, lag={max_lag})"


@pytest.mark.parametrize(
    ("seed", "n", "phi", "max_lag"),
    [
        (1, 672, 0.0, None),
        (2, 672, 0.3, None),
        (3, 336, 0.5, 3),
        (4, 2000, 0.3, 12),
        (5, 50, -0.4, 0),
    ],
)
def test_standard_error_matches_statsmodels_ols_hac(
    seed: int, n: int, phi: float, max_lag: int | None
) -> None:
    champion, challenger = _ar1_pair(seed, n, phi)
    lag = newey_west_lag(n) if max_lag is None else max_lag
    difference = challenger - champion
    fit = sm.OLS(difference, np.ones(n)).fit(
        cov_type="HAC", cov_kwds={"maxlags": lag, "use_correction": False}, use_t=False
    )
    result = paired_mean_difference_test(champion, challenger, max_lag=max_lag)
    assert result.estimate == pytest.approx(fit.params[0], rel=1e-10)
    assert result.standard_error == pytest.approx(fit.bse[0], rel=1e-10)
    assert result.statistic == pytest.approx(fit.tvalues[0], rel=1e-10)
    two_sided = fit.pvalues[0]
    expected_one_sided = two_sided / 2 if fit.tvalues[0] > 0 else 1 - two_sided / 2
    assert result.p_value == pytest.approx(expected_one_sided, rel=1e-8)


@pytest.mark.parametrize(("n", "lag"), [(1, 1), (10, 2), (100, 4), (336, 5), (672, 6), (2688, 8)])
def test_newey_west_rule_of_thumb_known_lags(n: int, lag: int) -> None:
    assert newey_west_lag(n) == lag


def test_positive_autocorrelation_widens_standard_error_over_iid() -> None:
    champion, challenger = _ar1_pair(7, 2000, 0.6)
    iid = paired_mean_difference_test(champion, challenger, max_lag=0)
    hac = paired_mean_difference_test(champion, challenger)
    # LRV/gamma0 = (1 + phi)/(1 - phi) = 4 for phi=0.6; the NW lag of 10 captures most of it
    assert hac.standard_error / iid.standard_error > 1.5


def test_identical_series_zero_difference_not_significant() -> None:
    returns = np.linspace(-0.01, 0.01, 30)
    result = paired_mean_difference_test(returns, returns)
    assert (result.estimate, result.standard_error, result.statistic) == (0.0, 0.0, 0.0)
    assert result.p_value == result.p_value_worse == 0.5


def test_swapped_result_flips_sign_and_tails() -> None:
    champion, challenger = _ar1_pair(8, 200, 0.2)
    forward = paired_mean_difference_test(champion, challenger)
    backward = paired_mean_difference_test(challenger, champion)
    assert backward.estimate == pytest.approx(-forward.estimate, abs=1e-15)
    assert backward.statistic == pytest.approx(-forward.statistic, rel=1e-12)
    assert backward.p_value == pytest.approx(forward.p_value_worse, rel=1e-12)
    assert forward.swapped().p_value == forward.p_value_worse


@pytest.mark.parametrize(
    ("champion", "challenger", "error", "match"),
    [
        ([0.0, 0.1, 0.2], [0.0, 0.1], ValueError, "same length"),
        ([0.0, np.nan, 0.2], [0.0, 0.1, 0.2], DataValidationError, "index 1"),
        ([0.0, 0.1, 0.2], [0.0, np.inf, 0.2], DataValidationError, "challenger returns"),
        ([0.1], [0.2], InsufficientDataError, "at least 2"),
        ([[0.1, 0.2]], [[0.2, 0.3]], ValueError, "1-D"),
    ],
)
def test_bad_inputs_raise_naming_the_problem(
    champion: object, challenger: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        paired_mean_difference_test(champion, challenger)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_lag", [-1, 5, 99])
def test_lag_outside_sample_raises(max_lag: int) -> None:
    with pytest.raises(ValueError, match="max_lag"):
        paired_mean_difference_test([0.0] * 5, [0.1, 0.0, 0.2, 0.1, 0.3], max_lag=max_lag)


@pytest.mark.parametrize(
    ("field", "value"), [("p_value", 1.5), ("p_value_worse", -0.1), ("standard_error", -1.0)]
)
def test_result_rejects_impossible_values(field: str, value: float) -> None:
    kwargs: dict[str, object] = {
        "method": "x",
        "estimate": 0.0,
        "standard_error": 1.0,
        "statistic": 0.0,
        "p_value": 0.5,
        "p_value_worse": 0.5,
        "n_periods": 10,
    }
    kwargs[field] = value
    with pytest.raises(ValueError, match=field):
        TestResult(**kwargs)  # type: ignore[arg-type]
