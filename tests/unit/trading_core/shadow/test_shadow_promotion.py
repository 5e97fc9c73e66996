"""evaluate_challenger: gates, promotion, rejection, waiting, reasons and statistics."""

import math
import re

import numpy as np
import pytest

from trading_core.config.models import PromotionCriteria, ShadowTestingSection
from trading_core.errors import ConfigError
from trading_core.shadow import ShadowVerdict, evaluate_challenger
from trading_core.types import bars_per_year

BPY = bars_per_year("1h")
SECTION = ShadowTestingSection(bootstrap_samples=499)


def _returns(seed: int, days: float, *, rho: float, gain: float) -> tuple[np.ndarray, np.ndarray]:
    """Hourly pair with 1% volatility, champion annualized Sharpe 1, challenger 1 + gain."""
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))
    shocks = rng.standard_normal((round(days * 24), 2)) @ chol.T * 0.01
    per_bar = 0.01 / math.sqrt(BPY)
    return shocks[:, 0] + per_bar, shocks[:, 1] + (1.0 + gain) * per_bar


def _trades(wins: int, total: int) -> np.ndarray:
    return np.where(np.arange(total) < wins, 0.01, -0.01)


def _evaluate(
    champion: np.ndarray,
    challenger: np.ndarray,
    *,
    days: float,
    trades: tuple[int, int] = (75, 90),
    n_trades: tuple[int, int] = (150, 150),
    section: ShadowTestingSection = SECTION,
    sequential_looks: bool = True,
) -> ShadowVerdict:
    return evaluate_challenger(
        champion,
        challenger,
        _trades(trades[0], n_trades[0]),
        _trades(trades[1], n_trades[1]),
        section=section,
        bars_per_year=BPY,
        duration_days=days,
        seed=7,
        sequential_looks=sequential_looks,
    )


def test_clearly_better_challenger_promoted_with_reasons() -> None:
    champion, challenger = _returns(1, 28, rho=0.98, gain=8.0)
    verdict = _evaluate(champion, challenger, days=28)
    assert verdict.decision == "promote"
    stats = verdict.statistics
    assert stats["sharpe_improvement_annualized"] == pytest.approx(
        stats["sharpe_challenger_annualized"] - stats["sharpe_champion_annualized"]
    )
    assert stats["win_rate_improvement"] == pytest.approx(0.1)
    assert stats["promotion_level"] == pytest.approx(0.0253206, abs=1e-6)
    assert re.fullmatch(r"sharpe improvement \d+(\.\d+)? >= 0\.2", verdict.reasons[0])
    assert verdict.reasons[1] == "win-rate improvement 0.1 >= 0.05"
    assert re.fullmatch(r"HAC mean-difference p=\S+ < 0\.0253", verdict.reasons[2])
    assert re.fullmatch(
        r"Sharpe-difference \(ledoit_wolf_bootstrap\) p=0\.002 < 0\.0253", verdict.reasons[3]
    )
    assert verdict.reasons[4].endswith("(reported, not required)")


def test_statistics_report_every_figure() -> None:
    champion, challenger = _returns(1, 20, rho=0.9, gain=0.0)
    verdict = _evaluate(champion, challenger, days=20)
    assert set(verdict.statistics) == {
        "duration_days", "n_periods", "n_trades_champion", "n_trades_challenger",
        "significance_level", "promotion_level", "sharpe_champion_annualized",
        "sharpe_challenger_annualized", "sharpe_improvement_annualized", "win_rate_champion",
        "win_rate_challenger", "win_rate_improvement", "mean_difference_per_bar",
        "p_value_mean_difference", "p_value_mean_difference_worse", "p_value_sharpe",
        "p_value_sharpe_worse", "p_value_win_rate",
    }  # fmt: skip
    assert verdict.statistics["n_periods"] == 480
    assert verdict.statistics["significance_level"] == pytest.approx(0.05)
    with pytest.raises(TypeError):
        verdict.statistics["n_periods"] = 1  # type: ignore[index]


def test_same_inputs_and_seed_give_identical_verdict() -> None:
    champion, challenger = _returns(2, 21, rho=0.9, gain=2.0)
    assert _evaluate(champion, challenger, days=21) == _evaluate(champion, challenger, days=21)


@pytest.mark.parametrize(
    ("days", "n_trades", "decision", "first_reason"),
    [
        (10.0, (150, 150), "wait", "duration 10.0 days < min 14"),
        (20.0, (150, 60), "wait", "fewest trades 60 < min 100 (either model)"),
        (20.0, (99, 150), "wait", "fewest trades 99 < min 100 (either model)"),
        (28.0, (150, 60), "reject", "inconclusive: max duration 28 days reached"),
    ],
)
def test_gates_wait_until_enough_time_and_trades(
    days: float, n_trades: tuple[int, int], decision: str, first_reason: str
) -> None:
    champion, challenger = _returns(3, days, rho=0.98, gain=8.0)  # would be promoted
    verdict = _evaluate(champion, challenger, days=days, trades=(40, 55), n_trades=n_trades)
    assert verdict.decision == decision
    assert verdict.reasons[0] == first_reason
    assert "p_value_sharpe" not in verdict.statistics


def test_significantly_worse_challenger_rejected_before_max_duration() -> None:
    champion, challenger = _returns(4, 20, rho=0.95, gain=-8.0)
    verdict = _evaluate(champion, challenger, days=20)
    assert verdict.decision == "reject"
    assert verdict.reasons[0].startswith("challenger significantly worse: HAC mean-difference")
    assert verdict.statistics["p_value_mean_difference_worse"] < 0.05


def test_equal_challenger_waits_then_is_rejected_at_max_duration() -> None:
    champion, challenger = _returns(5, 20, rho=0.9, gain=0.0)
    verdict = _evaluate(champion, challenger, days=20, trades=(75, 75))
    stats = verdict.statistics
    # precondition of this case: no test is significant in either direction
    assert min(stats["p_value_mean_difference"], stats["p_value_sharpe"]) > 0.05
    assert min(stats["p_value_mean_difference_worse"], stats["p_value_sharpe_worse"]) > 0.05
    assert verdict.decision == "wait"
    assert verdict.reasons[0] == "not every promotion criterion is met yet"
    ended = _evaluate(champion, challenger, days=28, trades=(75, 75))
    assert ended.decision == "reject"
    assert ended.reasons[0] == "max duration 28 days reached without promotion"


@pytest.mark.parametrize(
    ("criteria", "trades", "failing_reason"),
    [
        (PromotionCriteria(), (90, 80), "win-rate improvement -0.0667 < 0.05"),
        (PromotionCriteria(), (75, 82), "win-rate improvement 0.0467 < 0.05"),
        (PromotionCriteria(min_sharpe_improvement=50.0), (75, 90), "< 50"),
    ],
)
def test_each_threshold_blocks_promotion_of_a_significant_challenger(
    criteria: PromotionCriteria, trades: tuple[int, int], failing_reason: str
) -> None:
    champion, challenger = _returns(1, 28, rho=0.98, gain=8.0)
    section = ShadowTestingSection(bootstrap_samples=499, promotion_criteria=criteria)
    verdict = _evaluate(champion, challenger, days=27, trades=trades, section=section)
    assert verdict.decision == "wait"
    assert any(failing_reason in reason for reason in verdict.reasons)


def test_sequential_looks_demand_more_evidence_early() -> None:
    champion, challenger = _returns(6, 14, rho=0.98, gain=2.5)
    single = _evaluate(champion, challenger, days=14, sequential_looks=False)
    sequential = _evaluate(champion, challenger, days=14, sequential_looks=True)
    p_mean = single.statistics["p_value_mean_difference"]
    p_sharpe = single.statistics["p_value_sharpe"]
    # precondition: both p-values sit between the day-14 sequential level and alpha
    assert 0.0028541 < max(p_mean, p_sharpe) < 0.05
    assert single.decision == "promote"
    assert sequential.decision == "wait"
    assert sequential.statistics["promotion_level"] == pytest.approx(0.0028541, abs=1e-6)


def test_memmel_method_can_be_chosen() -> None:
    champion, challenger = _returns(1, 28, rho=0.98, gain=8.0)
    verdict = evaluate_challenger(
        champion, challenger, _trades(75, 150), _trades(90, 150), section=SECTION,
        bars_per_year=BPY, duration_days=28, seed=0, sharpe_method="memmel",
    )  # fmt: skip
    assert verdict.decision == "promote"
    assert "Sharpe-difference (jobson_korkie_memmel)" in verdict.reasons[3]


def test_max_duration_below_min_duration_is_a_config_error() -> None:
    champion, challenger = _returns(7, 20, rho=0.9, gain=0.0)
    section = ShadowTestingSection(min_duration_days=30, max_duration_days=28)
    with pytest.raises(ConfigError, match="max_duration_days=28"):
        _evaluate(champion, challenger, days=20, section=section)


@pytest.mark.parametrize(
    ("bars", "days", "match"),
    [(0.0, 20.0, "bars_per_year"), (math.nan, 20.0, "bars_per_year"), (BPY, -1.0, "duration")],
)
def test_bad_scalars_raise(bars: float, days: float, match: str) -> None:
    champion, challenger = _returns(8, 20, rho=0.9, gain=0.0)
    with pytest.raises(ValueError, match=match):
        evaluate_challenger(
            champion, challenger, [0.1], [0.1], section=SECTION, bars_per_year=bars,
            duration_days=days, seed=0,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("decision", "reasons", "match"),
    [("maybe", ("x",), "decision='maybe'"), ("wait", (), "at least one reason")],
)
def test_verdict_invariants(decision: str, reasons: tuple[str, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ShadowVerdict(decision, reasons, {})  # type: ignore[arg-type]
