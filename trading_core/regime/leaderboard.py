"""Engine leaderboard per regime over a trailing window, and the auto-gating payload from it.

A *vote* is a bar where the engine's |signal| exceeds ``min_abs_signal`` (default 0: any
non-zero signal) and the forward return is known. ``hit_rate`` is the share of votes whose sign
matches the forward return's (a zero return is a miss); ``pnl_contribution_bps`` is the sum over
votes of ``signal x forward_return_bps`` (overlapping horizons are summed as they come: a
ranking figure, not a P&L). ``rank`` is 1 for the best engine of a regime: more
``pnl_contribution_bps``, then higher hit rate, then registry order; engines without votes last.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.regime.gates import RegimeGates
from trading_core.types import REGIME_CODES, REGIMES, Regime

LEADERBOARD_SCHEMA: dict[str, pl.DataType] = {
    "engine": pl.String(),
    "regime": pl.String(),
    "hit_rate": pl.Float64(),
    "pnl_contribution_bps": pl.Float64(),
    "n_votes": pl.Int64(),
    "rank": pl.Int64(),
}


def _check_inputs(
    signals: npt.NDArray[np.float64],
    regimes: npt.NDArray[np.integer],
    forward_return_bps: npt.NDArray[np.float64],
    names: Sequence[str],
    window_bars: int,
) -> None:
    if signals.ndim != 2 or signals.shape[1] != len(names):
        raise ValueError(f"signals shape {signals.shape} must be (n_bars, {len(names)} names)")
    n = signals.shape[0]
    if regimes.shape != (n,) or forward_return_bps.shape != (n,):
        raise ValueError(
            f"regimes {regimes.shape} and forward_return_bps {forward_return_bps.shape} "
            f"must be ({n},) like signals"
        )
    if isinstance(window_bars, bool) or not isinstance(window_bars, int) or window_bars < 1:
        raise ValueError(f"window_bars {window_bars!r} must be an integer >= 1")
    if n and not np.all(np.isin(regimes, list(REGIME_CODES.values()))):
        raise ValueError(f"regimes must be codes of REGIME_CODES {dict(REGIME_CODES)}")


def engine_leaderboard(
    signals: npt.NDArray[np.float64],
    regimes: npt.NDArray[np.integer],
    forward_return_bps: npt.NDArray[np.float64],
    names: Sequence[str],
    *,
    window_bars: int,
    min_abs_signal: float = 0.0,
) -> pl.DataFrame:
    """One row per (regime, engine) over the last ``window_bars`` bars (LEADERBOARD_SCHEMA)."""
    signals, regimes = np.asarray(signals, np.float64), np.asarray(regimes)
    forward = np.asarray(forward_return_bps, np.float64)
    _check_inputs(signals, regimes, forward, names, window_bars)
    signals, regimes, forward = (
        signals[-window_bars:],
        regimes[-window_bars:],
        forward[-window_bars:],
    )
    known = np.isfinite(forward)
    fwd = np.where(known, forward, 0.0)
    votes = (np.abs(signals) > min_abs_signal) & known[:, None]
    hits = votes & (np.sign(signals) == np.sign(fwd)[:, None]) & (fwd != 0.0)[:, None]
    pnl = np.where(votes, signals * fwd[:, None], 0.0)
    frames = []
    for regime in REGIMES:
        here = (regimes == REGIME_CODES[regime])[:, None]
        n_votes = (votes & here).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            hit_rate = np.where(n_votes > 0, (hits & here).sum(axis=0) / n_votes, np.nan)
        frames.append(
            pl.DataFrame(
                {
                    "engine": list(names),
                    "regime": [regime.value] * len(names),
                    "hit_rate": hit_rate,
                    "pnl_contribution_bps": (pnl * here).sum(axis=0),
                    "n_votes": n_votes.astype(np.int64),
                    "__order": np.arange(len(names)),
                }
            )
        )
    board = pl.concat(frames).with_columns(
        pl.col("hit_rate").fill_nan(None), (pl.col("n_votes") == 0).alias("__silent")
    )
    ranked = board.sort(
        ["regime", "__silent", "pnl_contribution_bps", "hit_rate", "__order"],
        descending=[False, False, True, True, False],
        nulls_last=True,
    ).with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("regime").alias("rank"))
    order = {r.value: i for i, r in enumerate(REGIMES)}
    return (
        ranked.with_columns(pl.col("regime").replace_strict(order).alias("__regime_order"))
        .sort(["__regime_order", "rank"])
        .select(list(LEADERBOARD_SCHEMA))
        .cast(LEADERBOARD_SCHEMA)  # type: ignore[arg-type]
    )


def auto_gate(
    leaderboard: pl.DataFrame, current: RegimeGates, *, min_hit_rate: float, min_votes: int
) -> dict[str, Any]:
    """Gates payload (for ``RegimeGates.with_overrides``) from a leaderboard.

    Per tradable regime, an engine with at least ``min_votes`` votes is enabled when its hit rate
    is >= ``min_hit_rate`` and disabled otherwise; an engine with fewer votes keeps its current
    standing (enabled if it votes now, disabled if listed disabled now). If no engine would be
    enabled, every engine is disabled for that regime (nothing earned a vote). ILLIQUID never
    gets an enabled engine.
    """
    if not 0.0 <= min_hit_rate <= 1.0:
        raise ValueError(f"min_hit_rate {min_hit_rate!r} must be in [0, 1]")
    if isinstance(min_votes, bool) or not isinstance(min_votes, int) or min_votes < 1:
        raise ValueError(f"min_votes {min_votes!r} must be an integer >= 1")
    missing = [c for c in LEADERBOARD_SCHEMA if c not in leaderboard.columns]
    if missing:
        raise ValueError(f"leaderboard lacks {missing}; engine_leaderboard() produces it")
    payload: dict[str, Any] = {Regime.ILLIQUID.value: {"enabled_engines": []}}
    for regime in (Regime.TREND, Regime.RANGE, Regime.PANIC):
        rows = leaderboard.filter(pl.col("regime") == regime.value)
        stats = {r["engine"]: r for r in rows.iter_rows(named=True)}
        voting = dict(zip(current.engine_names, current.enabled_mask(regime), strict=True))
        listed_off = set(current.gate(regime).disabled_engines)
        enabled: list[str] = []
        disabled: list[str] = []
        for name in current.engine_names:
            row = stats.get(name)
            if row is not None and row["n_votes"] >= min_votes:
                good = row["hit_rate"] is not None and row["hit_rate"] >= min_hit_rate
                (enabled if good else disabled).append(name)
            elif voting[name]:
                enabled.append(name)
            elif name in listed_off:
                disabled.append(name)
        if not enabled:
            disabled = list(current.engine_names)
        payload[regime.value] = {"enabled_engines": enabled, "disabled_engines": disabled}
    return payload
