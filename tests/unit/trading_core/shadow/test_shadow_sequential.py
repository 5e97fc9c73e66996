"""O'Brien–Fleming-type per-look levels: reflection-principle known answers and a Brownian
Monte Carlo check of the overall level."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from trading_core.shadow.sequential import (
    crossing_probability,
    obrien_fleming_constant,
    sequential_alpha,
)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.10])
def test_single_look_boundary_is_the_fixed_sample_quantile(alpha: float) -> None:
    assert obrien_fleming_constant(alpha, 1.0) == pytest.approx(norm.isf(alpha), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.10])
def test_monitoring_from_time_zero_gives_reflection_principle_boundary(alpha: float) -> None:
    # P(sup_{[0,1]} B >= c) = 2 (1 - Phi(c)), so c = z_{alpha / 2}
    assert obrien_fleming_constant(alpha, 1e-10) == pytest.approx(norm.isf(alpha / 2), rel=1e-5)


def test_half_way_start_known_constant() -> None:
    assert obrien_fleming_constant(0.05, 0.5) == pytest.approx(1.95451, abs=1e-4)


def test_crossing_probability_matches_brownian_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    paths, steps, start = 20_000, 1_000, 0.5
    boundary = obrien_fleming_constant(0.05, start)
    dt = (1.0 - start) / steps
    at_start = rng.standard_normal(paths) * math.sqrt(start)
    walk = at_start[:, None] + np.cumsum(rng.standard_normal((paths, steps)) * math.sqrt(dt), 1)
    crossed = (at_start >= boundary) | (walk.max(axis=1) >= boundary)
    # MC s.e. 0.0015; a 1000-step grid misses a few crossings (bias ~ -0.002), so +-0.006
    assert crossed.mean() == pytest.approx(0.05, abs=0.006)
    assert crossing_probability(boundary, start) == pytest.approx(0.05, abs=1e-8)


def test_per_look_level_grows_to_final_level_and_clamps() -> None:
    kwargs = {"min_duration_days": 14.0, "max_duration_days": 28.0}
    days = [10.0, 14.0, 18.0, 21.0, 28.0, 40.0]
    levels = [sequential_alpha(0.05, duration_days=d, **kwargs) for d in days]
    assert levels[0] == levels[1] == pytest.approx(0.0028541, abs=1e-6)
    assert levels[4] == levels[5] == pytest.approx(0.0253206, abs=1e-6)
    assert levels[1] < levels[2] < levels[3] < levels[4] < 0.05


@pytest.mark.parametrize(("alpha", "start"), [(0.0, 0.5), (0.5, 0.5), (0.05, 0.0), (0.05, 1.5)])
def test_bad_level_or_start_raises(alpha: float, start: float) -> None:
    with pytest.raises(ValueError, match=r"alpha|start_fraction"):
        obrien_fleming_constant(alpha, start)


def test_min_duration_above_max_raises() -> None:
    with pytest.raises(ValueError, match="min_duration_days"):
        sequential_alpha(0.05, duration_days=20, min_duration_days=30, max_duration_days=28)
