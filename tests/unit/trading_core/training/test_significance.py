"""PSR / DSR / the Sharpe ratio's standard error: published worked examples, simulation, and
invariants under hypothesis."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kurtosis, norm, skew

from trading_core.training.significance import (
    MIN_RETURNS_FOR_INFERENCE,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_evidence,
    sharpe_standard_error,
)


def test_dsr_paper_numerical_example_matches_published_figures() -> None:
    # Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", numerical example: annualized
    # SR 2.5 over 1,250 daily returns (250 a year), skew -3, kurtosis 10, 100 trials whose
    # annualized Sharpe estimates have variance 1/2 -> SR0 = 0.1132 per day and DSR = 0.9004.
    sr = 2.5 / math.sqrt(250)
    variance = 0.5 / 250
    assert expected_max_sharpe(100, variance) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(
        sr, 1250, n_trials=100, sharpe_variance=variance, skewness=-3.0, kurtosis=10.0
    )
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_psr_normal_returns_equals_lo_2002_formula() -> None:
    sr, n = 0.08, 400
    expected = norm.cdf(sr * math.sqrt(n - 1) / math.sqrt(1 + sr * sr / 2))
    assert probabilistic_sharpe_ratio(sr, n) == pytest.approx(expected, rel=1e-12)


def test_negative_skew_and_fat_tails_widen_the_standard_error() -> None:
    normal = sharpe_standard_error(0.1, 500)
    assert sharpe_standard_error(0.1, 500, skewness=-2.0, kurtosis=9.0) > normal


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_psr_p_values_are_calibrated_on_zero_edge_returns(seed: int) -> None:
    # 2,000 zero-mean series of 600 heavy-tailed (t with 4 dof) returns: the share with
    # 1 - PSR(0) <= 0.05 must be 5 % within sampling error (3 standard errors: +-1.5 %)
    rng = np.random.default_rng(seed)
    draws = rng.standard_t(4, size=(2000, 600)) * 0.01
    sr = draws.mean(axis=1) / draws.std(axis=1, ddof=1)
    skewness = skew(draws, axis=1, bias=False)
    kurt = kurtosis(draws, axis=1, fisher=False, bias=False)
    p_values = [
        1.0 - probabilistic_sharpe_ratio(s, 600, skewness=g3, kurtosis=g4)
        for s, g3, g4 in zip(sr, skewness, kurt, strict=True)
    ]
    # the vectorized moments are the ones sharpe_evidence computes
    one = sharpe_evidence(draws[0])
    assert (one.sharpe_per_bar, one.skewness) == pytest.approx((sr[0], skewness[0]))
    share = float(np.mean(np.array(p_values) <= 0.05))
    assert 0.035 <= share <= 0.065


@pytest.mark.parametrize(
    ("returns", "problem"),
    [
        ([0.0] * 100, "constant"),
        ([0.001] * 100, "constant"),
        ([0.01, -0.01] * 10, f"20 out-of-sample returns < {MIN_RETURNS_FOR_INFERENCE}"),
        ([0.01, float("nan")] * 50, "NaN or infinite"),
        ([0.01, float("inf")] * 50, "NaN or infinite"),
        ([], "0 out-of-sample returns"),
    ],
)
def test_bad_return_series_give_a_problem_not_an_exception(
    returns: list[float], problem: str
) -> None:
    ev = sharpe_evidence(returns)
    assert not ev.usable and problem in ev.problem
    assert math.isnan(ev.standard_error)


def test_single_trial_has_no_deflation() -> None:
    assert expected_max_sharpe(1, 0.01) == 0.0
    assert deflated_sharpe_ratio(0.1, 300, n_trials=1, sharpe_variance=0.01) == pytest.approx(
        probabilistic_sharpe_ratio(0.1, 300)
    )


@pytest.mark.parametrize(("n_trials", "variance"), [(0, 1.0), (5, -1.0), (5, float("nan"))])
def test_expected_max_sharpe_rejects_bad_inputs(n_trials: int, variance: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        expected_max_sharpe(n_trials, variance)


returns_strategy = st.lists(
    st.floats(-0.05, 0.05, allow_nan=False, allow_infinity=False), min_size=40, max_size=200
)


@settings(max_examples=60, deadline=None)
@given(returns=returns_strategy, scale=st.floats(1e-3, 1e3))
def test_psr_is_invariant_to_the_scale_of_returns(returns: list[float], scale: float) -> None:
    base = sharpe_evidence(returns)
    scaled = sharpe_evidence(np.array(returns) * scale)
    assert base.usable == scaled.usable
    if base.usable and abs(base.skewness) < 1e6:
        assert scaled.sharpe_per_bar == pytest.approx(base.sharpe_per_bar, rel=1e-6, abs=1e-9)
        psr = probabilistic_sharpe_ratio(
            base.sharpe_per_bar, base.n_returns, skewness=base.skewness, kurtosis=base.kurtosis
        )
        psr_scaled = probabilistic_sharpe_ratio(
            scaled.sharpe_per_bar,
            scaled.n_returns,
            skewness=scaled.skewness,
            kurtosis=scaled.kurtosis,
        )
        assert psr_scaled == pytest.approx(psr, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    sr=st.floats(-0.3, 0.3),
    n=st.integers(30, 5000),
    trials=st.integers(1, 2000),
    extra=st.integers(1, 2000),
    variance=st.floats(1e-6, 1e-1),
)
def test_dsr_is_monotone_non_increasing_in_the_number_of_trials(
    sr: float, n: int, trials: int, extra: int, variance: float
) -> None:
    fewer = deflated_sharpe_ratio(sr, n, n_trials=trials, sharpe_variance=variance)
    more = deflated_sharpe_ratio(sr, n, n_trials=trials + extra, sharpe_variance=variance)
    assert more <= fewer + 1e-12
    assert expected_max_sharpe(trials + extra, variance) >= expected_max_sharpe(trials, variance)
