"""Two-proportion z test on win rates: hand and statsmodels known answers, edge cases."""

import numpy as np
import pytest
from statsmodels.stats.proportion import proportions_ztest

from trading_core.errors import DataValidationError, InsufficientDataError
from trading_core.shadow import win_count, win_rate_difference


def _trades(wins: int, losses: int) -> np.ndarray:
    return np.concatenate([np.full(wins, 0.01), np.full(losses, -0.01)])


def test_hand_computed_fifty_vs_sixty_percent() -> None:
    # pooled 0.55; se = sqrt(0.55 * 0.45 * (1/100 + 1/100)) = 0.0703562; z = 0.1 / se = 1.42134
    diff, p_value = win_rate_difference(_trades(50, 50), _trades(60, 40))
    assert diff == pytest.approx(0.10, abs=1e-15)
    assert p_value == pytest.approx(0.0776092448423, rel=1e-9)


@pytest.mark.parametrize(
    ("champ_wins", "champ_n", "chall_wins", "chall_n"),
    [(50, 100, 60, 100), (70, 150, 60, 120), (33, 101, 45, 99), (120, 400, 150, 380), (5, 9, 1, 3)],
)
def test_matches_statsmodels_proportions_ztest(
    champ_wins: int, champ_n: int, chall_wins: int, chall_n: int
) -> None:
    diff, p_value = win_rate_difference(
        _trades(champ_wins, champ_n - champ_wins), _trades(chall_wins, chall_n - chall_wins)
    )
    _, expected_p = proportions_ztest(
        [chall_wins, champ_wins], [chall_n, champ_n], alternative="larger"
    )
    assert diff == pytest.approx(chall_wins / chall_n - champ_wins / champ_n, rel=1e-12)
    assert p_value == pytest.approx(expected_p, rel=1e-9)


def test_flat_trade_is_not_a_win() -> None:
    assert win_count([0.0, 0.02, -0.01, 1e-12]) == (2, 4)


def test_swapping_sides_flips_difference_and_complements_p() -> None:
    forward = win_rate_difference(_trades(40, 60), _trades(55, 45))
    backward = win_rate_difference(_trades(55, 45), _trades(40, 60))
    assert backward[0] == pytest.approx(-forward[0], abs=1e-15)
    assert backward[1] == pytest.approx(1.0 - forward[1], rel=1e-12)


@pytest.mark.parametrize(("wins", "losses"), [(10, 0), (0, 10)])
def test_all_wins_or_all_losses_on_both_sides_no_evidence(wins: int, losses: int) -> None:
    assert win_rate_difference(_trades(wins, losses), _trades(wins, losses)) == (0.0, 0.5)


def test_empty_trade_list_raises_with_counts() -> None:
    with pytest.raises(InsufficientDataError, match="champion has 0, challenger has 3"):
        win_rate_difference([], [0.1, -0.1, 0.2])


def test_non_finite_trade_return_raises() -> None:
    with pytest.raises(DataValidationError, match="challenger trade returns"):
        win_rate_difference([0.1, -0.1], [0.1, float("nan")])
