"""Invariants of the vote (hypothesis): unanimity, duplicates, permutations, disabled engines."""

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from trading_core.consensus import (
    ConsensusParams,
    ConsensusResult,
    cluster_divisors,
    combine_votes,
    reliability_series,
)

PARAMS = ConsensusParams((0.3, 0.35, 0.45, 0.5), 0.6, 0.8, 0.95, 0.5)
BOUNDARY = 1e-9
SHARED = ("regimes", "outcome")  # per-bar, not per-engine

# subnormal confidences underflow the weighted sums to 0 (a hold), as subnormal multipliers do
unit = st.floats(0.0, 1.0, allow_nan=False, width=64, allow_subnormal=False)
signed = st.floats(-1.0, 1.0, allow_nan=False, width=64)


@st.composite
def market(draw: st.DrawFn) -> dict[str, npt.NDArray[np.generic]]:
    n_bars = draw(st.integers(3, 30))
    n_engines = draw(st.integers(2, 7))
    return {
        "signals": draw(arrays(np.float64, (n_bars, n_engines), elements=signed)),
        "confidences": draw(arrays(np.float64, (n_bars, n_engines), elements=unit)),
        "regimes": draw(arrays(np.int64, n_bars, elements=st.integers(0, 3))),
        "outcome": draw(arrays(np.float64, n_bars, elements=st.sampled_from([-1.0, 0.0, 1.0]))),
        "enabled": draw(arrays(np.bool_, (4, n_engines))),
        "multipliers": draw(
            arrays(np.float64, (4, n_engines), elements=st.floats(0.0, 2.0, allow_subnormal=False))
        ),
    }


def _consensus(m: dict[str, npt.NDArray[np.generic]]) -> ConsensusResult:
    """The real pipeline: reliability from the signals' hits, clusters over the same bars."""
    reliability = reliability_series(
        m["signals"], m["outcome"], m["regimes"], decay=0.9, prior=0.5, horizon_bars=1
    )
    divisors = cluster_divisors(
        m["signals"],
        m["enabled"],
        PARAMS.correlation_threshold,
        confidence_window=m["confidences"],
        weight_multipliers=m["multipliers"],
    )
    return combine_votes(
        m["signals"],
        m["confidences"],
        m["regimes"],
        reliability,
        enabled=m["enabled"],
        weight_multipliers=m["multipliers"],
        cluster_divisors=divisors,
        params=PARAMS,
    )


def _assert_same_decision(a: ConsensusResult, b: ConsensusResult, regimes: np.ndarray) -> None:
    np.testing.assert_allclose(a.score, b.score, atol=1e-9)
    np.testing.assert_allclose(a.agreement, b.agreement, atol=1e-9)
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-9)
    threshold = np.asarray(PARAMS.thresholds)[regimes]
    # bars whose score or agreement sits on a threshold may differ by float rounding only
    clear = (np.abs(np.abs(a.score) - threshold) > BOUNDARY) & (
        np.abs(a.agreement - PARAMS.min_agreement) > BOUNDARY
    )
    np.testing.assert_array_equal(a.action[clear], b.action[clear])


def _with_column(
    m: dict[str, npt.NDArray[np.generic]], column: dict[str, npt.NDArray[np.generic]]
) -> dict[str, npt.NDArray[np.generic]]:
    return {
        "signals": np.column_stack([m["signals"], column["signals"]]),
        "confidences": np.column_stack([m["confidences"], column["confidences"]]),
        "regimes": m["regimes"],
        "outcome": m["outcome"],
        "enabled": np.column_stack([m["enabled"], column["enabled"]]),
        "multipliers": np.column_stack([m["multipliers"], column["multipliers"]]),
    }


@settings(max_examples=100, deadline=None, derandomize=True)
@given(m=market(), side=st.sampled_from([-1.0, 1.0]))
def test_unanimous_votes_give_agreement_one(
    m: dict[str, npt.NDArray[np.generic]], side: float
) -> None:
    m = {**m, "signals": side * np.maximum(np.abs(m["signals"]), 0.01)}
    result = _consensus(m)
    voted = result.weights.sum(axis=1) > 0.0
    np.testing.assert_allclose(result.agreement[voted], 1.0)
    assert np.all(np.sign(result.score[voted]) == side)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(m=market(), data=st.data())
def test_exact_duplicate_engine_changes_nothing(
    m: dict[str, npt.NDArray[np.generic]], data: st.DataObject
) -> None:
    j = data.draw(st.integers(0, m["signals"].shape[1] - 1))
    copy = {k: v[:, j] for k, v in m.items() if k not in SHARED}
    _assert_same_decision(_consensus(m), _consensus(_with_column(m, copy)), m["regimes"])


@settings(max_examples=100, deadline=None, derandomize=True)
@given(m=market(), data=st.data())
def test_permuting_engines_changes_nothing(
    m: dict[str, npt.NDArray[np.generic]], data: st.DataObject
) -> None:
    order = np.array(data.draw(st.permutations(range(m["signals"].shape[1]))))
    permuted = {k: (v if k in SHARED else v[:, order]) for k, v in m.items()}
    _assert_same_decision(_consensus(m), _consensus(permuted), m["regimes"])


@settings(max_examples=100, deadline=None, derandomize=True)
@given(m=market(), data=st.data())
def test_disabled_engine_never_changes_the_decision(
    m: dict[str, npt.NDArray[np.generic]], data: st.DataObject
) -> None:
    n_bars = m["signals"].shape[0]
    stranger = {
        "signals": data.draw(arrays(np.float64, n_bars, elements=signed)),
        "confidences": data.draw(arrays(np.float64, n_bars, elements=unit)),
        "enabled": np.zeros(4, dtype=bool),
        "multipliers": data.draw(
            arrays(np.float64, 4, elements=st.floats(0.0, 2.0, allow_subnormal=False))
        ),
    }
    with_stranger = _consensus(_with_column(m, stranger))
    _assert_same_decision(_consensus(m), with_stranger, m["regimes"])
    assert np.all(with_stranger.weights[:, -1] == 0.0)
