"""Shadow periods (Hamilton's record), the evidence they add up to, and the verdict on it."""

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from trading_core.brain import ModelKey, ShadowResult
from trading_core.config.models import PromotionCriteria, ShadowTestingSection
from trading_core.errors import DataValidationError
from trading_core.shadow.lifecycle import (
    audit_statistics,
    collect_evidence,
    review_challenger,
    review_seed,
    verdict_reason,
)
from trading_core.shadow.periods import ShadowPeriod, day_end
from trading_core.shadow.promotion import ShadowVerdict

KEY = ModelKey("BTC", "RANGE", "1h")
CHALLENGER = "BTC_RANGE_1h_v2_20261025_000000"
CHAMPION = "BTC_RANGE_1h_v1_20261018_000000"
DAY0 = datetime(2026, 10, 25, tzinfo=UTC)
HOUR_MS = 3_600_000
SECTION = ShadowTestingSection(
    min_duration_days=7, max_duration_days=14, min_trades=10, bootstrap_samples=499
)


def _period(day: int, champ: Any, chall: Any, *, start_hour: int = 0, **kw: Any) -> ShadowPeriod:
    first = DAY0 + timedelta(days=day, hours=start_hour)
    n = len(champ)
    return ShadowPeriod(
        challenger=kw.pop("challenger", CHALLENGER),
        champion=kw.pop("champion", CHAMPION),
        first_bar_open=first,
        last_bar_open=first + timedelta(hours=n - 1),
        bar_ms=HOUR_MS,
        champion_returns=tuple(float(x) for x in champ),
        challenger_returns=tuple(float(x) for x in chall),
        **kw,
    )


def _result(period: ShadowPeriod, *, recorded: int = 0) -> ShadowResult:
    """A period as the Brain Library hands it back (through JSON, like the database)."""
    args = json.loads(json.dumps(period.record_arguments(), default=str))
    return ShadowResult(
        key=KEY,
        challenger=period.challenger,
        champion=period.champion,
        period_start=period.period_start,
        period_end=period.period_end,
        challenger_returns=tuple(args["challenger_returns"]),
        champion_returns=tuple(args["champion_returns"]),
        statistics=args["statistics"],
        decision=args["decision"],
        recorded_at=DAY0 + timedelta(days=30, seconds=recorded),
    )


def _week(seed: int, *, gain: float, days: int = 7) -> list[ShadowPeriod]:
    """Hourly paired returns: 0.5% noise, the challenger ``gain`` per bar better."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0.0, 0.005, (days, 24))
    own = rng.normal(0.0, 0.001, (days, 24, 2))
    trades_champ = tuple(np.where(np.arange(12) < 6, 0.01, -0.01))
    trades_chall = tuple(np.where(np.arange(12) < 9, 0.01, -0.01)) if gain else trades_champ
    return [
        _period(
            d,
            common[d] + own[d, :, 0],
            common[d] + own[d, :, 1] + gain,
            champion_trades=trades_champ if d == 0 else (),
            challenger_trades=trades_chall if d == 0 else (),
        )
        for d in range(days)
    ]


def test_period_key_is_first_bar_and_end_of_its_day() -> None:
    period = _period(0, [0.0] * 5, [0.0] * 5, start_hour=13)
    assert period.period_start == DAY0 + timedelta(hours=13)
    assert period.period_end == DAY0 + timedelta(days=1) == day_end(period.first_bar_open)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"champion_returns": (0.0,), "challenger_returns": (0.0, 0.0)}, "paired"),
        ({"champion_returns": (), "challenger_returns": ()}, "at least one bar"),
        ({"champion_returns": (-1.5,), "challenger_returns": (0.0,)}, ">= -1"),
        ({"champion_trades": (math.nan,)}, "finite"),
        ({"last_bar_open": DAY0 + timedelta(days=1)}, "one UTC day"),
        ({"first_bar_open": datetime(2026, 10, 25)}, "UTC"),  # noqa: DTZ001 - the bad value
    ],
)
def test_period_invalid_fields_raise(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {
        "challenger": CHALLENGER,
        "champion": CHAMPION,
        "first_bar_open": DAY0,
        "last_bar_open": DAY0,
        "bar_ms": HOUR_MS,
        "champion_returns": (0.0,),
        "challenger_returns": (0.0,),
    } | kwargs
    with pytest.raises(ValueError, match=message):
        ShadowPeriod(**fields)


def test_period_roundtrips_through_spool_and_brain_library_row() -> None:
    period = _period(
        2, [0.01, -0.02], [0.0, 0.03], champion_trades=(0.05,), challenger_trades=(-0.01, 0.02)
    )
    assert ShadowPeriod.from_dict(json.loads(json.dumps(period.to_dict()))) == period
    assert ShadowPeriod.from_result(_result(period)) == period
    stats = period.statistics()
    assert stats["champion_return"] == pytest.approx(1.01 * 0.98 - 1.0)
    assert stats["challenger_return"] == pytest.approx(1.03 - 1.0)
    assert stats["bars"] == 2


def test_period_from_a_row_hamilton_did_not_write_raises() -> None:
    row = _result(_period(0, [0.0], [0.0]))
    foreign = ShadowResult(**{**vars_of(row), "statistics": {"kind": "manual"}})
    with pytest.raises(DataValidationError, match="not a Hamilton period"):
        ShadowPeriod.from_result(foreign)


def vars_of(result: ShadowResult) -> dict[str, Any]:
    return {name: getattr(result, name) for name in ShadowResult.__dataclass_fields__}


def test_evidence_keeps_only_the_current_champion_in_time_order() -> None:
    periods = [_period(1, [0.01], [0.02]), _period(0, [0.03], [0.04])]
    other = _period(2, [0.5], [0.5], champion="BTC_RANGE_1h_v3_20261101_000000")
    stranger = _period(3, [0.7], [0.7], challenger="BTC_RANGE_1h_v9_20261101_000000")
    results = [_result(p) for p in (*periods, other, stranger)]
    evidence = collect_evidence(results, challenger=CHALLENGER, champion=CHAMPION)
    np.testing.assert_allclose(evidence.series("champion_returns"), [0.03, 0.01])
    np.testing.assert_allclose(evidence.series("challenger_returns"), [0.04, 0.02])
    assert evidence.n_bars == 2 and evidence.duration_days == pytest.approx(2 / 24)
    assert evidence.first_bar_open == DAY0
    assert evidence.last_bar_close == DAY0 + timedelta(days=1, hours=1)


def test_evidence_overlapping_periods_keep_the_newest_record() -> None:
    partial = _period(0, [0.01] * 3, [0.02] * 3)
    complete = _period(0, [0.05] * 24, [0.06] * 24)
    results = [_result(partial, recorded=1), _result(complete, recorded=2)]
    evidence = collect_evidence(results, challenger=CHALLENGER, champion=CHAMPION)
    assert evidence.n_bars == 24 and evidence.series("champion_returns")[0] == 0.05


def test_review_too_few_bars_waits_then_rejects_at_max_duration() -> None:
    evidence = collect_evidence(
        [_result(_period(0, [0.0, 0.0], [0.0, 0.0]))], challenger=CHALLENGER, champion=CHAMPION
    )
    verdict = review_challenger(evidence, section=SECTION, timeframe="1h", seed=1)
    assert verdict.decision == "wait" and "only 2 paired bars" in verdict.reasons[0]
    daily = [
        ShadowPeriod(
            CHALLENGER,
            CHAMPION,
            DAY0 + timedelta(days=d),
            DAY0 + timedelta(days=d),
            86_400_000,
            (0.0,),
            (0.0,),
        )
        for d in range(2)
    ]
    two_days = collect_evidence(
        [_result(p) for p in daily], challenger=CHALLENGER, champion=CHAMPION
    )
    short = SECTION.model_copy(update={"min_duration_days": 1, "max_duration_days": 2})
    at_max = review_challenger(two_days, section=short, timeframe="1d", seed=1)
    assert at_max.decision == "reject"
    assert at_max.reasons[0] == "inconclusive: max duration 2 days reached"
    assert at_max.statistics["duration_days"] == 2.0


def test_review_flat_books_wait_instead_of_raising() -> None:
    periods = [_period(d, [0.0] * 24, [0.0] * 24) for d in range(7)]
    evidence = collect_evidence(
        [_result(p) for p in periods], challenger=CHALLENGER, champion=CHAMPION
    )
    lenient = SECTION.model_copy(update={"min_trades": 0})
    verdict = review_challenger(evidence, section=lenient, timeframe="1h", seed=1)
    assert verdict.decision == "wait"
    assert "zero variance" in verdict.reasons[0]


def test_review_clearly_better_challenger_promoted_equal_one_not() -> None:
    section = SECTION.model_copy(
        update={"promotion_criteria": PromotionCriteria(min_win_rate_improvement=0.05)}
    )
    better = [_result(p) for p in _week(3, gain=0.002)]
    equal = [_result(p) for p in _week(3, gain=0.0)]
    verdicts = [
        review_challenger(
            collect_evidence(r, challenger=CHALLENGER, champion=CHAMPION),
            section=section,
            timeframe="1h",
            seed=review_seed(CHALLENGER),
        )
        for r in (better, equal)
    ]
    assert [v.decision for v in verdicts] == ["promote", "wait"]
    assert verdicts[0].statistics["p_value_mean_difference"] < 0.01
    assert verdicts[0].statistics["duration_days"] == pytest.approx(7.0)


def test_audit_statistics_are_json_data_with_nan_as_null() -> None:
    evidence = collect_evidence(
        [_result(_period(0, [0.01] * 4, [0.02] * 4))], challenger=CHALLENGER, champion=CHAMPION
    )
    verdict = ShadowVerdict("wait", ("not yet",), {"p_value_sharpe": math.nan, "x": 1.5})
    stats = audit_statistics(verdict, evidence)
    assert json.loads(json.dumps(stats, allow_nan=False)) == stats
    assert stats["p_value_sharpe"] is None and stats["x"] == 1.5
    assert stats["challenger"] == CHALLENGER and stats["periods"] == 1
    assert verdict_reason(verdict) == "shadow test: wait: not yet"


def test_review_seed_is_stable_per_key_and_version_whenever_registered() -> None:
    again = "BTC_RANGE_1h_v2_20261124_050134"  # the same challenger trained on another run
    assert review_seed(CHALLENGER) == review_seed(again) != review_seed(CHAMPION)
