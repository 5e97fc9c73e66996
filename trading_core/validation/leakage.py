"""Leakage detection: the checks the training DAG runs before it trusts a validation.

* :func:`split_leakage_problems` — train/test overlap after purging, and training labels whose
  real end time (``CoinFrame.label_end_ms``: the label as defined, gaps included) reaches into
  the purge/test span (``assert_no_leakage`` per key).
* :func:`feature_causality_problems` — every feature recomputed on data truncated at ``t``
  equals the original at ``t`` (a feature that peeks at later bars changes when they vanish).
* :func:`purge_covers_horizon` — the configured purge gap is at least the label horizon, so the
  purge alone (not only the label filter) separates training labels from test bars.
"""

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.config.models import WalkForwardSection
from trading_core.errors import LeakageError
from trading_core.validation.walk_forward import DAY_MS, WalkForwardSplit, assert_no_leakage

FeatureFn = Callable[[pl.DataFrame], pl.DataFrame]


def split_leakage_problems(
    splits: Sequence[WalkForwardSplit],
    timestamps_ms: npt.NDArray[np.int64],
    *,
    label_end_ms: npt.NDArray[np.int64],
) -> list[str]:
    """Empty when the splits are clean; else one message per leaking window. ``label_end_ms``
    holds each bar's label end time (``trading_core.features.label_end_ms``)."""
    problems = []
    for split in splits:
        try:
            assert_no_leakage([split], timestamps_ms, label_end_ms=label_end_ms)
        except LeakageError as exc:
            problems.append(str(exc))
    return problems


def purge_covers_horizon(
    section: WalkForwardSection, *, bar_ms: int, label_horizon_bars: int
) -> str | None:
    """None when ``purge_days`` spans the label horizon; else the problem."""
    horizon_ms = label_horizon_bars * bar_ms
    if section.purge_days * DAY_MS >= horizon_ms:
        return None
    return (
        f"purge_days={section.purge_days} ({section.purge_days * DAY_MS / 3.6e6:.0f} h) is shorter "
        f"than the label horizon {label_horizon_bars} bars ({horizon_ms / 3.6e6:.0f} h)"
    )


def feature_causality_problems(
    bars: pl.DataFrame,
    compute: FeatureFn,
    *,
    columns: Sequence[str],
    cut_points: Sequence[int],
    rel_tol: float = 1e-9,
    abs_tol: float = 1e-9,
) -> list[str]:
    """Recompute ``compute`` on ``bars[: t + 1]`` for each cut point ``t`` and compare the value
    at ``t`` with the full-history value of every column in ``columns``."""
    if not columns:
        raise ValueError("columns must name at least one feature to check")
    full = compute(bars)
    problems = []
    for t in cut_points:
        if not 0 <= t < bars.height:
            raise ValueError(f"cut point {t} outside the {bars.height} bars")
        truncated = compute(bars.head(t + 1))
        for column in columns:
            a = full[column][t]
            b = truncated[column][t]
            if not _same(a, b, rel_tol, abs_tol):
                problems.append(
                    f"feature {column!r} at bar {t}: {a!r} on the full history but {b!r} on "
                    f"data truncated at that bar (it uses later bars)"
                )
    return problems


def _same(a: object, b: object, rel_tol: float, abs_tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    x, y = float(a), float(b)  # type: ignore[arg-type]
    if np.isnan(x) or np.isnan(y):
        return bool(np.isnan(x) and np.isnan(y))
    return abs(x - y) <= max(abs_tol, rel_tol * max(abs(x), abs(y)))
