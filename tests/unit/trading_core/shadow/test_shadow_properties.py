"""Property: exchanging champion and challenger flips the sign of every statistic and swaps the
two one-sided p-values (exactly, the bootstrap included, for a fixed seed)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from trading_core.shadow import (
    TestResult,
    paired_mean_difference_test,
    sharpe_difference_test,
    win_rate_difference,
)

returns = st.floats(-0.05, 0.05, allow_nan=False, allow_subnormal=False)


@st.composite
def paired_series(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(10, 80))
    champion = draw(arrays(np.float64, n, elements=returns))
    challenger = draw(arrays(np.float64, n, elements=returns))
    # well-conditioned Sharpe ratios: clearly non-constant series
    assume(champion.std() > 1e-4 and challenger.std() > 1e-4)
    return champion, challenger


def _assert_swapped(forward: TestResult, backward: TestResult) -> None:
    expected = forward.swapped()
    assert backward.estimate == pytest.approx(expected.estimate, rel=1e-9, abs=1e-12)
    assert backward.statistic == pytest.approx(expected.statistic, rel=1e-9, abs=1e-9)
    assert backward.standard_error == pytest.approx(expected.standard_error, rel=1e-9)
    assert backward.p_value == pytest.approx(expected.p_value, rel=1e-9, abs=1e-12)
    assert backward.p_value_worse == pytest.approx(expected.p_value_worse, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(paired_series(), st.sampled_from([None, 0, 3]))
def test_swap_flips_hac_mean_difference(
    pair: tuple[np.ndarray, np.ndarray], max_lag: int | None
) -> None:
    champion, challenger = pair
    _assert_swapped(
        paired_mean_difference_test(champion, challenger, max_lag=max_lag),
        paired_mean_difference_test(challenger, champion, max_lag=max_lag),
    )


@settings(max_examples=60, deadline=None)
@given(paired_series())
def test_swap_flips_memmel(pair: tuple[np.ndarray, np.ndarray]) -> None:
    champion, challenger = pair
    _assert_swapped(
        sharpe_difference_test(champion, challenger, method="memmel"),
        sharpe_difference_test(challenger, champion, method="memmel"),
    )


@settings(max_examples=40, deadline=None)
@given(paired_series(), st.integers(1, 10), st.integers(0, 2**32 - 1))
def test_swap_flips_ledoit_wolf_bootstrap(
    pair: tuple[np.ndarray, np.ndarray], block: int, seed: int
) -> None:
    champion, challenger = pair
    options = {"block_length_bars": block, "bootstrap_samples": 49, "seed": seed}
    forward = sharpe_difference_test(
        champion, challenger, method="ledoit_wolf_bootstrap", **options
    )
    backward = sharpe_difference_test(
        challenger, champion, method="ledoit_wolf_bootstrap", **options
    )
    _assert_swapped(forward, backward)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([-0.01, 0.0, 0.02]), min_size=1, max_size=200),
    st.lists(st.sampled_from([-0.01, 0.0, 0.02]), min_size=1, max_size=200),
)
def test_swap_flips_win_rate_difference(champion: list[float], challenger: list[float]) -> None:
    diff, p_value = win_rate_difference(champion, challenger)
    back_diff, back_p = win_rate_difference(challenger, champion)
    assert back_diff == pytest.approx(-diff, abs=1e-15)
    if diff == 0.0:
        assert back_p == p_value == 0.5
    else:
        assert back_p == pytest.approx(1.0 - p_value, abs=1e-12)
