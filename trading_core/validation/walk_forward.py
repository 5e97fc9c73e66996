"""Purged, embargoed walk-forward splits (López de Prado, *Advances in Financial Machine
Learning*, 2018, ch. 7: purging §7.4.1, embargo §7.4.2).

Layout: test windows of ``test_days`` are laid back to back, the last one ending at the last
labelled bar, at most ``max_windows`` of them. Each window trains on the ``train_days`` before its
test span, separated from it by a ``purge_days`` gap (or on everything before the gap when
``anchored``). A training sample at bar ``t`` is kept only if its label horizon ends before the
purge gap starts: ``t + label_horizon_bars * bar_ms < test_start - purge``. The label is defined
in time (``trading_core.features.labels``: it ends exactly ``label_horizon_bars * bar_ms`` after
its bar, or is dropped when that bar is missing), so this bound holds across gaps in the candles;
:func:`assert_no_leakage` verifies it against the labels' real end times. Training samples in the
``embargo_days`` right after any earlier test span are dropped too, so that serially correlated
features straddling a test span never feed a later window (the embargo).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trading_core.config.models import WalkForwardSection
from trading_core.errors import InsufficientDataError, LeakageError

DAY_MS = 86_400_000
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class WalkForwardSplit:
    """One window: positional indices into the bar array, and the spans in ms."""

    window: int
    train_idx: IntArray
    test_idx: IntArray
    test_start_ms: int
    test_end_ms: int
    purge_start_ms: int

    def __post_init__(self) -> None:
        if (
            self.train_idx.size
            and self.test_idx.size
            and self.train_idx.max() >= self.test_idx.min()
        ):
            raise LeakageError(
                f"window {self.window}: training index {int(self.train_idx.max())} is not before "
                f"the first test index {int(self.test_idx.min())}"
            )


def purged_walk_forward_splits(
    timestamps_ms: npt.NDArray[np.int64],
    section: WalkForwardSection,
    *,
    bar_ms: int,
    label_horizon_bars: int,
) -> list[WalkForwardSplit]:
    """Splits over sorted open times ``timestamps_ms`` (gaps allowed), oldest window first.

    Raises :class:`InsufficientDataError` when not even one full window fits.
    """
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    if ts.ndim != 1 or (ts.size > 1 and np.any(np.diff(ts) <= 0)):
        raise ValueError("timestamps_ms must be a strictly increasing 1-D array of open times")
    if label_horizon_bars < 1:
        raise ValueError(f"label_horizon_bars={label_horizon_bars} must be >= 1")
    if ts.size == 0:
        raise InsufficientDataError("no bars to split")
    horizon_ms = label_horizon_bars * bar_ms
    last_labelled = ts[-1] - horizon_ms  # the last bar whose label is fully known
    test_ends = _test_window_ends(int(ts[0]), int(last_labelled) + bar_ms, section)
    if not test_ends:
        raise InsufficientDataError(
            f"history of {(ts[-1] - ts[0]) / DAY_MS:.1f} days is too short for one window of "
            f"train {section.train_days}d + purge {section.purge_days}d + test {section.test_days}d"
        )
    splits = []
    for window, test_end in enumerate(test_ends):
        splits.append(_split(ts, window, test_end, test_ends[:window], section, horizon_ms))
    return splits


def _test_window_ends(first_ms: int, end_ms: int, section: WalkForwardSection) -> list[int]:
    test_ms = section.test_days * DAY_MS
    need_before = (section.train_days + section.purge_days) * DAY_MS
    ends: list[int] = []
    test_end = end_ms
    while len(ends) < section.max_windows and test_end - test_ms - need_before >= first_ms:
        ends.append(test_end)
        test_end -= test_ms
    return sorted(ends)


def _split(
    ts: IntArray,
    window: int,
    test_end: int,
    earlier_test_ends: list[int],
    section: WalkForwardSection,
    horizon_ms: int,
) -> WalkForwardSplit:
    test_start = test_end - section.test_days * DAY_MS
    purge_start = test_start - section.purge_days * DAY_MS
    train_start = ts[0] if section.anchored else purge_start - section.train_days * DAY_MS
    label_end = ts + horizon_ms
    train_mask = (ts >= train_start) & (ts < purge_start) & (label_end < purge_start)
    embargo_ms = section.embargo_days * DAY_MS
    for earlier_end in earlier_test_ends:
        train_mask &= ~((ts >= earlier_end) & (ts < earlier_end + embargo_ms))
    test_mask = (ts >= test_start) & (ts < test_end)
    return WalkForwardSplit(
        window=window,
        train_idx=np.flatnonzero(train_mask).astype(np.int64),
        test_idx=np.flatnonzero(test_mask).astype(np.int64),
        test_start_ms=int(test_start),
        test_end_ms=int(test_end),
        purge_start_ms=int(purge_start),
    )


def leaking_training_bars(
    split: WalkForwardSplit,
    timestamps_ms: npt.NDArray[np.int64],
    label_end_ms: npt.NDArray[np.int64],
) -> IntArray:
    """Positions of ``split``'s training bars that leak: the bar opens inside the purge/test span
    or its label (end time ``label_end_ms``, ``NO_LABEL_END_MS`` for none) ends at or after the
    purge start."""
    ts, ends = _checked(timestamps_ms, label_end_ms)
    rows = split.train_idx
    late = (ends[rows] >= split.purge_start_ms) | (
        (ts[rows] >= split.purge_start_ms) & (ts[rows] < split.test_end_ms)
    )
    leaking: IntArray = rows[late]
    return leaking


def assert_no_leakage(
    splits: Sequence[WalkForwardSplit],
    timestamps_ms: npt.NDArray[np.int64],
    *,
    label_end_ms: npt.NDArray[np.int64],
) -> None:
    """Raise :class:`LeakageError` if a bar is in both train and test of a window, or a kept
    training bar lies in its purge/test span or has a label (its real end time, per bar, as
    ``trading_core.features.label_end_ms`` gives it) ending at or after the purge start."""
    ts, ends = _checked(timestamps_ms, label_end_ms)
    for split in splits:
        if split.train_idx.size == 0:
            continue
        overlap = np.intersect1d(split.train_idx, split.test_idx)
        if overlap.size:
            raise LeakageError(
                f"window {split.window}: {overlap.size} bars are in both train and test "
                f"(first index {int(overlap[0])})"
            )
        leaking = leaking_training_bars(split, ts, ends)
        if leaking.size:
            raise LeakageError(_leak_message(split, ts, ends, leaking))


def _leak_message(split: WalkForwardSplit, ts: IntArray, ends: IntArray, leaking: IntArray) -> str:
    in_test = (ends[leaking] >= split.test_start_ms) & (ends[leaking] < split.test_end_ms)
    first = int(leaking[0])
    # a label cannot end before its bar: such an end is the no-label sentinel
    label = "no label" if ends[first] < ts[first] else f"a label ending at {int(ends[first])} ms"
    return (
        f"window {split.window}: {leaking.size} training bars reach into the purge/test span "
        f"[{split.purge_start_ms}, {split.test_end_ms}) ms ({int(in_test.sum())} with a label "
        f"ending inside the test span starting at {split.test_start_ms} ms); first: bar {first} "
        f"opening at {int(ts[first])} ms with {label}; a kept training bar and its label must "
        f"end before the purge start {split.purge_start_ms} ms"
    )


def _checked(
    timestamps_ms: npt.NDArray[np.int64], label_end_ms: npt.NDArray[np.int64]
) -> tuple[IntArray, IntArray]:
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    ends = np.asarray(label_end_ms, dtype=np.int64)
    if ts.ndim != 1 or ends.shape != ts.shape:
        raise ValueError(
            f"label_end_ms {ends.shape} must hold one end time per bar of timestamps_ms "
            f"{ts.shape} (1-D)"
        )
    return ts, ends
