"""Purged walk-forward splits: exact indices, purging, embargo, leakage detection."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_core.config.models import WalkForwardSection
from trading_core.errors import InsufficientDataError, LeakageError
from trading_core.features import label_end_ms
from trading_core.validation import assert_no_leakage, purged_walk_forward_splits
from trading_core.validation.walk_forward import DAY_MS, WalkForwardSplit

DAILY = np.arange(20, dtype=np.int64) * DAY_MS


def _section(**kw: object) -> WalkForwardSection:
    base: dict[str, object] = {
        "train_days": 4,
        "test_days": 2,
        "purge_days": 1,
        "embargo_days": 0,
        "min_windows": 1,
        "min_test_trades": 0,
        "max_windows": 3,
    }
    base.update(kw)
    return WalkForwardSection.model_validate(base)


def test_daily_bars_known_layout_exact_indices() -> None:
    splits = purged_walk_forward_splits(DAILY, _section(), bar_ms=DAY_MS, label_horizon_bars=1)
    assert [s.test_idx.tolist() for s in splits] == [[13, 14], [15, 16], [17, 18]]
    assert [s.train_idx.tolist() for s in splits] == [[8, 9, 10], [10, 11, 12], [12, 13, 14]]
    assert [s.purge_start_ms // DAY_MS for s in splits] == [12, 14, 16]


def test_longer_label_horizon_purges_more_training_bars() -> None:
    splits = purged_walk_forward_splits(DAILY, _section(), bar_ms=DAY_MS, label_horizon_bars=3)
    # last labelled bar is 16, so the last test window is [15, 17)
    assert [s.test_idx.tolist() for s in splits] == [[11, 12], [13, 14], [15, 16]]
    # label of t ends at t+3 which must be < purge start (test_start - 1 day)
    assert [s.train_idx.tolist() for s in splits] == [[6], [8], [10]]


def test_anchored_embargo_drops_bars_after_earlier_test_spans() -> None:
    section = _section(anchored=True, embargo_days=1, purge_days=0, max_windows=3)
    splits = purged_walk_forward_splits(DAILY, section, bar_ms=DAY_MS, label_horizon_bars=1)
    last = splits[-1]
    assert last.test_idx.tolist() == [17, 18]
    # anchored: from bar 0; labels must end before 17 -> t <= 15; embargo after earlier test
    # spans ending at 15 and 17 removes bar 15
    assert last.train_idx.tolist() == list(range(0, 15))


def test_max_windows_caps_the_number_of_windows() -> None:
    hourly = np.arange(24 * 200, dtype=np.int64) * 3_600_000
    section = WalkForwardSection(max_windows=12, test_days=5)
    splits = purged_walk_forward_splits(hourly, section, bar_ms=3_600_000, label_horizon_bars=4)
    assert len(splits) == 12
    assert all(s.test_idx.size == 5 * 24 for s in splits)
    # 4 label-purged bars; the embargo removes one day after each earlier test span inside the
    # 20-day training span (the previous window ends at this test start, outside the span)
    embargoed_days = [max(0, min(i - 1, 4)) for i in range(12)]
    assert [s.train_idx.size for s in splits] == [20 * 24 - 4 - 24 * d for d in embargoed_days]


def test_too_short_history_raises_insufficient_data() -> None:
    with pytest.raises(InsufficientDataError, match="too short"):
        purged_walk_forward_splits(DAILY[:5], _section(), bar_ms=DAY_MS, label_horizon_bars=1)


def test_gaps_in_bars_keep_windows_in_time_not_in_rows() -> None:
    ts = np.delete(DAILY, [14, 15])
    splits = purged_walk_forward_splits(ts, _section(), bar_ms=DAY_MS, label_horizon_bars=1)
    for split in splits:
        times = ts[split.test_idx]
        assert np.all((times >= split.test_start_ms) & (times < split.test_end_ms))


def test_planted_overlapping_split_is_detected() -> None:
    bad = WalkForwardSplit(
        window=0,
        train_idx=np.array([5, 6, 7]),
        test_idx=np.array([8, 9]),
        test_start_ms=8 * DAY_MS,
        test_end_ms=10 * DAY_MS,
        purge_start_ms=7 * DAY_MS,
    )
    with pytest.raises(LeakageError, match="reach into the purge/test span"):
        assert_no_leakage([bad], DAILY, label_end_ms=label_end_ms(DAILY, 1, DAY_MS))


def test_split_with_training_after_test_is_refused() -> None:
    with pytest.raises(LeakageError, match="not before"):
        WalkForwardSplit(0, np.array([9]), np.array([8]), 0, 1, 0)


@settings(max_examples=60, deadline=None)
@given(
    n_bars=st.integers(200, 2000),
    horizon=st.integers(1, 12),
    train=st.integers(2, 10),
    test=st.integers(1, 4),
    purge=st.integers(0, 2),
    embargo=st.integers(0, 2),
    anchored=st.booleans(),
    drop=st.lists(st.integers(0, 1999), max_size=30),
)
def test_any_layout_never_leaks(
    n_bars: int,
    horizon: int,
    train: int,
    test: int,
    purge: int,
    embargo: int,
    anchored: bool,
    drop: list[int],
) -> None:
    ts = np.delete(np.arange(n_bars, dtype=np.int64) * 3_600_000, [d for d in drop if d < n_bars])
    section = _section(
        train_days=train,
        test_days=test,
        purge_days=purge,
        embargo_days=embargo,
        anchored=anchored,
        max_windows=6,
    )
    try:
        splits = purged_walk_forward_splits(
            ts, section, bar_ms=3_600_000, label_horizon_bars=horizon
        )
    except InsufficientDataError:
        return
    assert_no_leakage(splits, ts, label_end_ms=label_end_ms(ts, horizon, 3_600_000))
    tests = np.concatenate([s.test_idx for s in splits])
    assert np.unique(tests).size == tests.size  # test windows never overlap
