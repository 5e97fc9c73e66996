"""The promotion gate across a day's keys: one test per rule, bad evidence, and properties."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_core.config.models import PromotionGateSection
from trading_core.training.gate import GateVerdict, KeyEvidence, judge_keys
from trading_core.training.significance import SharpeEvidence, sharpe_evidence

HOURLY = 8760.0
GATE = PromotionGateSection()


def _key(slug: str, z: float, *, n: int = 1440, edge: float = 5.0, **kw: object) -> KeyEvidence:
    """A key whose standardized Sharpe ratio is ``z`` (normal moments)."""
    sr = z / math.sqrt(n - 1)
    ev = SharpeEvidence(n, sr * 0.01, 0.01, sr, 0.0, 3.0)
    return KeyEvidence(slug, ev, edge, 60, HOURLY, **kw)  # type: ignore[arg-type]


def test_strong_key_among_null_keys_passes_and_the_rest_do_not() -> None:
    keys = [_key("STRONG", 6.0), *(_key(f"N{i}", z) for i, z in enumerate([0.3, -1.0, 1.2, 0.0]))]
    verdicts = judge_keys(keys, GATE)
    assert verdicts["STRONG"].passed and verdicts["STRONG"].reason.startswith("passed")
    assert not any(verdicts[f"N{i}"].passed for i in range(4))
    assert all(v.n_trials == 5 for v in verdicts.values())


def test_negative_sharpe_is_never_promoted() -> None:
    verdict = judge_keys([_key("NEG", -8.0)], GATE)["NEG"]
    assert not verdict.passed and "no positive out-of-sample result" in verdict.reason


def test_positive_sharpe_with_negative_edge_after_costs_is_not_promoted() -> None:
    verdict = judge_keys([_key("K", 6.0, edge=-3.0)], GATE)["K"]
    assert not verdict.passed and "no positive out-of-sample result" in verdict.reason


def test_significant_alone_but_not_among_many_tested_keys_fails() -> None:
    # z = 2.5: p = 0.006 passes as the only test, not among 40 tested keys with no edge
    alone = judge_keys([_key("K", 2.5)], GATE)["K"]
    crowd = judge_keys([_key("K", 2.5), *(_key(f"N{i}", 0.0) for i in range(39))], GATE)["K"]
    assert alone.passed
    assert not crowd.passed and "not significant" in crowd.reason
    assert (crowd.n_tested, crowd.n_trials) == (40, 40)
    assert crowd.p_adjusted > alone.p_adjusted


def test_keys_without_evidence_count_as_trials_but_not_as_tests() -> None:
    # independent filtering: a key filtered by its counts stays out of the BH family, while the
    # DSR's expected maximum counts every key tried
    thin = [_key(f"T{i}", 9.0, eligible=False, ineligible_reason="5 trades") for i in range(99)]
    verdict = judge_keys([_key("K", 2.5), *thin], GATE)["K"]
    assert (verdict.n_tested, verdict.n_trials) == (1, 100)
    assert verdict.passed and verdict.expected_max_sharpe > 0.0
    assert judge_keys([_key("K", 2.5)], GATE, n_tried=400)["K"].n_trials == 400


def test_configurations_per_key_multiply_the_trials() -> None:
    section = PromotionGateSection(configurations_per_key=50)
    verdict = judge_keys([_key("K", 2.5), _key("L", 0.0)], section)["K"]
    assert (verdict.n_trials, verdict.n_tested) == (100, 100) and not verdict.passed


def test_adjusted_p_value_boundary_passes_at_alpha_and_fails_just_above() -> None:
    p = judge_keys([_key("K", 2.0)], GATE)["K"].p_adjusted
    at = judge_keys([_key("K", 2.0)], PromotionGateSection(alpha=p))["K"]
    below = judge_keys([_key("K", 2.0)], PromotionGateSection(alpha=p * (1 - 1e-9)))["K"]
    assert at.passed and at.p_adjusted == p
    assert not below.passed


def test_ineligible_key_gets_insufficient_evidence_with_its_reason() -> None:
    verdict = judge_keys(
        [_key("K", 9.0, eligible=False, ineligible_reason="3 usable windows < min_windows 5")],
        GATE,
    )["K"]
    assert not verdict.passed
    assert verdict.reason == "insufficient evidence: 3 usable windows < min_windows 5"


@pytest.mark.parametrize(
    ("returns", "fragment"),
    [
        ([0.001] * 500, "constant"),
        ([0.0] * 500, "constant"),
        ([0.01, -0.005] * 5, "10 out-of-sample returns"),
        ([0.01, float("nan")] * 200, "NaN or infinite"),
        ([0.01, float("inf"), -0.01] * 100, "NaN or infinite"),
    ],
)
def test_bad_return_series_give_insufficient_evidence_never_promotion(
    returns: list[float], fragment: str
) -> None:
    key = KeyEvidence("K", sharpe_evidence(returns), 10.0, 50, HOURLY)
    verdict = judge_keys([key], GATE)["K"]
    assert not verdict.passed
    assert verdict.reason.startswith("insufficient evidence:") and fragment in verdict.reason
    assert verdict.p_value == 1.0


def test_dsr_method_deflates_by_the_expected_maximum() -> None:
    section = PromotionGateSection(method="dsr")
    keys = [_key("K", 4.0), *(_key(f"N{i}", 0.0) for i in range(99))]
    verdict = judge_keys(keys, section)["K"]
    assert verdict.expected_max_sharpe > 0.0
    # z = 4 against an expected maximum of ~2.5 null z-scores: DSR ~ Phi(1.5) < 0.95
    assert 0.85 < verdict.dsr < 0.95 and not verdict.passed
    assert judge_keys([_key("K", 6.0), *keys[1:]], section)["K"].passed


def test_verdict_records_are_json_and_metrics_are_finite() -> None:
    verdict = judge_keys([_key("K", 3.0), _key("L", 0.1)], GATE)["K"]
    payload = verdict.to_json()
    assert payload["slug"] == "K" and payload["n_trials"] == 2
    assert all(math.isfinite(v) for v in verdict.metrics().values())
    missing = judge_keys([KeyEvidence("X", sharpe_evidence([]), 0.0, 0, HOURLY)], GATE)["X"]
    assert missing.to_json()["psr"] is None and "oos_psr" not in missing.metrics()


def test_verdict_refuses_impossible_values() -> None:
    with pytest.raises(ValueError, match="p_value"):
        GateVerdict("K", False, "", "fdr_bh", 0.05, 1, p_value=1.5)
    with pytest.raises(ValueError, match="n_trials"):
        GateVerdict("K", False, "", "fdr_bh", 0.05, 0)


def test_no_keys_gives_no_verdicts() -> None:
    assert judge_keys([], GATE) == {}


@settings(max_examples=50, deadline=None)
@given(
    zs=st.lists(st.floats(-4.0, 8.0), min_size=1, max_size=30),
    extra=st.integers(1, 60),
)
def test_more_trials_never_lower_an_adjusted_p_value_or_add_a_pass(
    zs: list[float], extra: int
) -> None:
    keys = [_key(f"K{i}", z) for i, z in enumerate(zs)]
    few = judge_keys(keys, GATE)
    # extra tested keys with no edge at all (p ~ 1): BH can only grow
    many = judge_keys([*keys, *(_key(f"X{i}", -4.5) for i in range(extra))], GATE)
    for slug, verdict in few.items():
        assert many[slug].p_adjusted >= verdict.p_adjusted - 1e-12
        assert many[slug].passed <= verdict.passed


@settings(max_examples=40, deadline=None)
@given(zs=st.lists(st.floats(-4.0, 8.0), min_size=1, max_size=20), scale=st.floats(0.01, 100))
def test_verdicts_are_invariant_to_the_scale_of_returns(zs: list[float], scale: float) -> None:
    keys = [_key(f"K{i}", z) for i, z in enumerate(zs)]
    scaled = [
        KeyEvidence(
            k.slug,
            SharpeEvidence(
                k.evidence.n_returns,
                k.evidence.mean * scale,
                k.evidence.std * scale,
                k.evidence.sharpe_per_bar,
                0.0,
                3.0,
            ),
            k.edge_after_cost_bps * scale,
            k.n_trades,
            k.bars_per_year,
        )
        for k in keys
    ]
    a, b = judge_keys(keys, GATE), judge_keys(scaled, GATE)
    assert {s: v.passed for s, v in a.items()} == {s: v.passed for s, v in b.items()}
