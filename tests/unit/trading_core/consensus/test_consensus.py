"""Consensus: reliability (causal, tracker == series), correlation clusters, the vote."""

import math

import numpy as np
import pytest

from trading_core.config.models import ConsensusSection
from trading_core.consensus import (
    ConsensusParams,
    ConsensusResult,
    ReliabilityTracker,
    calibrate_information_coefficient,
    calibrate_information_coefficients_by_regime,
    cluster_divisors,
    combine_votes,
    consensus_expected_return_bps,
    engine_votes,
    forward_return_sign,
    reliability_series,
)
from trading_core.types import Action

TREND, RANGE, PANIC, ILLIQUID = 0, 1, 2, 3
PARAMS = ConsensusParams.from_config(ConsensusSection())


def test_forward_return_sign_is_unknown_for_the_last_horizon_bars() -> None:
    got = forward_return_sign([1.0, 2.0, 2.0, 1.0, 3.0], 2)
    assert got[:3].tolist() == [1.0, -1.0, 1.0]
    assert np.isnan(got[3:]).all()


def test_tracker_known_answer_with_prior_shrinkage() -> None:
    tracker = ReliabilityTracker.initial(2, decay=0.5, prior=0.5)
    tracker = tracker.update(TREND, [1.0, -0.3], 1.0)  # engine 0 hits, engine 1 misses
    assert tracker.reliability(TREND).tolist() == pytest.approx([0.75, 0.25])
    tracker = tracker.update(TREND, [1.0, 0.0], -1.0)  # engine 0 misses, engine 1 abstains
    assert tracker.reliability(TREND).tolist() == pytest.approx([1.0 / 2.5, 0.5 / 1.5])
    assert tracker.reliability(RANGE).tolist() == [0.5, 0.5]


def test_unknown_or_flat_outcome_changes_nothing() -> None:
    tracker = ReliabilityTracker.initial(2, decay=0.9, prior=0.5)
    assert tracker.update(TREND, [1.0, 1.0], math.nan) is tracker
    assert tracker.update(TREND, [1.0, 1.0], 0.0) is tracker


def _random_case(seed: int, n: int = 400, engines: int = 5) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    signals = np.where(rng.uniform(size=(n, engines)) < 0.3, 0.0, rng.uniform(-1, 1, (n, engines)))
    outcome = np.sign(rng.normal(size=n))
    outcome[-3:] = np.nan
    regimes = rng.integers(0, 4, n)
    return signals, outcome, regimes


@pytest.mark.parametrize("horizon", [1, 4, 24])
def test_series_equals_stepping_the_tracker(horizon: int) -> None:
    signals, outcome, regimes = _random_case(7)
    series = reliability_series(
        signals, outcome, regimes, decay=0.95, prior=0.5, horizon_bars=horizon
    )
    tracker = ReliabilityTracker.initial(signals.shape[1], decay=0.95, prior=0.5)
    for t in range(signals.shape[0]):
        resolved = t - horizon
        if resolved >= 0:
            tracker = tracker.update(int(regimes[resolved]), signals[resolved], outcome[resolved])
        np.testing.assert_allclose(series[t], tracker.reliability(int(regimes[t])), rtol=1e-12)


def test_tracker_from_history_continues_the_series() -> None:
    signals, outcome, regimes = _random_case(13, n=300)
    horizon, split = 4, 200
    series = reliability_series(
        signals, outcome, regimes, decay=0.9, prior=0.5, horizon_bars=horizon
    )
    tracker = ReliabilityTracker.from_history(
        signals[:split], outcome[:split], regimes[:split], decay=0.9, prior=0.5,
        horizon_bars=horizon,
    )  # fmt: skip
    for t in range(split, signals.shape[0]):  # a restarted service stepping on new bars
        resolved = t - horizon
        tracker = tracker.update(int(regimes[resolved]), signals[resolved], outcome[resolved])
        np.testing.assert_allclose(series[t], tracker.reliability(int(regimes[t])), rtol=1e-12)


def test_series_is_causal_future_outcomes_do_not_leak() -> None:
    signals, outcome, regimes = _random_case(11)
    horizon, changed_bar = 4, 200
    base = reliability_series(signals, outcome, regimes, decay=0.9, prior=0.5, horizon_bars=horizon)
    flipped = outcome.copy()
    flipped[changed_bar:] *= -1.0
    after = reliability_series(
        signals, flipped, regimes, decay=0.9, prior=0.5, horizon_bars=horizon
    )
    np.testing.assert_array_equal(base[: changed_bar + horizon], after[: changed_bar + horizon])
    assert not np.array_equal(base[changed_bar + horizon :], after[changed_bar + horizon :])


def test_initial_tracker_carries_earlier_evidence() -> None:
    signals, outcome, regimes = _random_case(3, n=50)
    warm = ReliabilityTracker.initial(5, decay=0.9, prior=0.5).update(TREND, np.ones(5), 1.0)
    cold = reliability_series(signals, outcome, regimes, decay=0.9, prior=0.5, horizon_bars=2)
    carried = reliability_series(
        signals, outcome, regimes, decay=0.9, prior=0.5, horizon_bars=2, initial=warm
    )
    trend_rows = regimes == TREND
    assert np.all(carried[trend_rows] > cold[trend_rows])
    np.testing.assert_array_equal(carried[~trend_rows], cold[~trend_rows])


def test_tracker_round_trips_through_a_dict() -> None:
    tracker = ReliabilityTracker.initial(3, decay=0.95, prior=0.4).update(PANIC, [1, -1, 0], 1.0)
    restored = ReliabilityTracker.from_dict(tracker.to_dict())
    np.testing.assert_array_equal(restored.reliability(PANIC), tracker.reliability(PANIC))


def test_non_finite_signals_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        reliability_series([[np.nan]], [1.0], [0], decay=0.9, prior=0.5, horizon_bars=1)


def _correlated_window(seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=300)
    return np.column_stack(
        [base, base + 0.1 * rng.normal(size=300), rng.normal(size=300), rng.normal(size=300)]
    )


def test_correlated_engines_share_one_weight() -> None:
    enabled = np.ones((4, 4), dtype=bool)
    divisors = cluster_divisors(np.clip(_correlated_window() / 3, -1, 1), enabled, 0.8)
    assert divisors[TREND].tolist() == [2.0, 2.0, 1.0, 1.0]


def test_exact_copy_splits_its_originals_share() -> None:
    window = np.clip(_correlated_window() / 3, -1, 1)
    with_copy = np.column_stack([window, window[:, 2]])
    divisors = cluster_divisors(with_copy, np.ones((4, 5), dtype=bool), 0.8)
    assert divisors[TREND].tolist() == [2.0, 2.0, 2.0, 1.0, 2.0]


def test_disabled_engines_are_left_out_of_the_clusters() -> None:
    enabled = np.ones((4, 4), dtype=bool)
    enabled[RANGE, 1] = False
    divisors = cluster_divisors(np.clip(_correlated_window() / 3, -1, 1), enabled, 0.8)
    assert divisors[RANGE].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert divisors[TREND].tolist() == [2.0, 2.0, 1.0, 1.0]


def _vote(
    signals: list[list[float]],
    confidences: list[list[float]],
    regimes: list[int],
    reliability: list[list[float]],
    params: ConsensusParams = PARAMS,
    enabled: np.ndarray | None = None,
) -> ConsensusResult:
    n = len(signals[0])
    return combine_votes(
        signals,
        confidences,
        regimes,
        reliability,
        enabled=np.ones((4, n), dtype=bool) if enabled is None else enabled,
        weight_multipliers=np.ones((4, n)),
        cluster_divisors=np.ones((4, n)),
        params=params,
    )


def test_vote_known_answer() -> None:
    result = _vote([[1.0, 0.5, -1.0]], [[1.0, 0.5, 1.0]], [TREND], [[0.6, 0.5, 0.4]])
    assert result.score[0] == pytest.approx(0.26)
    assert result.agreement[0] == pytest.approx(0.68)
    assert result.confidence[0] == pytest.approx(0.85 / 1.5)
    assert result.weights[0].tolist() == pytest.approx([0.6, 0.25, 0.4])
    assert result.action_at(0) is Action.HOLD  # 0.26 < TREND threshold 0.5
    low = ConsensusParams((0.2, 0.2, 0.2, 0.2), 0.6, 0.8, 0.95, 0.5)
    assert (
        _vote([[1.0, 0.5, -1.0]], [[1.0, 0.5, 1.0]], [TREND], [[0.6, 0.5, 0.4]], low).action[0] == 1
    )


@pytest.mark.parametrize(
    ("signals", "regime", "action"),
    [
        ([0.9, 0.8, 0.7], TREND, 1),
        ([-0.9, -0.8, -0.7], PANIC, -1),
        ([0.6, 0.6, 0.6], PANIC, 0),  # below the PANIC threshold 0.65
        ([0.9, 0.9, 0.9], ILLIQUID, 0),  # never trades illiquid markets
        ([0.9, 0.9, -0.9], TREND, 0),  # agreement 2/3 passes, but the score 0.3 does not
    ],
)
def test_vote_action_follows_thresholds(signals: list[float], regime: int, action: int) -> None:
    result = _vote([signals], [[1.0, 1.0, 1.0]], [regime], [[0.5, 0.5, 0.5]])
    assert result.action[0] == action


def test_disabled_and_zero_confidence_engines_do_not_vote() -> None:
    enabled = np.ones((4, 3), dtype=bool)
    enabled[TREND, 2] = False
    result = _vote(
        [[0.9, -0.9, -1.0]], [[1.0, 0.0, 1.0]], [TREND], [[0.5, 0.5, 0.5]], enabled=enabled
    )
    assert result.score[0] == pytest.approx(0.9)
    assert result.agreement[0] == pytest.approx(1.0)
    assert result.weights[0].tolist() == [0.5, 0.0, 0.0]


def test_no_voter_gives_zero_and_hold() -> None:
    result = _vote([[0.9, 0.9]], [[0.0, 0.0]], [TREND], [[0.5, 0.5]])
    assert (result.score[0], result.agreement[0], result.confidence[0]) == (0.0, 0.0, 0.0)
    assert result.action[0] == 0


def test_result_arrays_are_read_only() -> None:
    result = _vote([[0.9, 0.9]], [[1.0, 1.0]], [TREND], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="read-only"):
        result.score[0] = 1.0


def test_out_of_range_signal_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        _vote([[1.5, 0.0]], [[1.0, 1.0]], [TREND], [[0.5, 0.5]])


def test_engine_votes_build_event_records() -> None:
    votes = engine_votes(("a", "b"), [0.5, -0.2], [0.9, 0.1], [0.3, 0.0], [True, False])
    assert [(v.engine, v.signal, v.weight, v.enabled) for v in votes] == [
        ("a", 0.5, 0.3, True),
        ("b", -0.2, 0.0, False),
    ]


def test_params_from_config_order_thresholds_by_regime_code() -> None:
    assert PARAMS.thresholds == (0.5, 0.55, 0.65, 0.7)
    assert (PARAMS.min_agreement, PARAMS.correlation_threshold) == (0.6, 0.8)


def test_information_coefficient_recovers_a_planted_edge_and_floors_none() -> None:
    rng = np.random.default_rng(0)
    score = rng.uniform(-1, 1, 20_000)
    vol = rng.uniform(20, 80, 20_000)
    noise = rng.normal(size=20_000)
    planted = (0.1 * score + noise) * vol * 2.0  # horizon 4 -> sqrt = 2
    assert calibrate_information_coefficient(score, planted, vol, 4) == pytest.approx(0.1, abs=0.02)
    assert calibrate_information_coefficient(score, -planted, vol, 4) == 0.0
    assert calibrate_information_coefficient(score[:10], planted[:10], vol[:10], 4) == 0.0


def test_insignificant_fit_gets_no_edge_and_regimes_are_fitted_apart() -> None:
    rng = np.random.default_rng(1)
    score = rng.uniform(-1, 1, 4_000)
    vol = np.full(4_000, 50.0)
    noise_only = rng.normal(size=4_000) * vol * 2.0
    assert calibrate_information_coefficient(score, noise_only, vol, 4) == 0.0
    regimes = np.repeat([TREND, RANGE], 2_000)
    returns = np.where(regimes == RANGE, (0.3 * score + rng.normal(size=4_000)) * 100.0, 0.0)
    returns = returns + np.where(regimes == TREND, rng.normal(size=4_000) * 100.0, 0.0)
    by_regime = calibrate_information_coefficients_by_regime(score, returns, vol, regimes, 4)
    assert by_regime[TREND] == 0.0
    assert by_regime[RANGE] == pytest.approx(0.3, abs=0.06)
    assert by_regime[PANIC] == by_regime[ILLIQUID] == 0.0  # no bars


def test_expected_return_scales_with_volatility_over_the_horizon() -> None:
    forecast = consensus_expected_return_bps([0.5, -1.0, 0.5], [40.0, 40.0, np.nan], 4, 0.1)
    assert forecast.tolist() == pytest.approx([4.0, -8.0, 0.0])
