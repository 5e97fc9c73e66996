"""The weekly engine leaderboard across coins, and the gate overrides it implies.

Two sources rank the engines per regime: the bars of the parquet store (every rule engine's
signal on every bar against the forward return that followed: :func:`universe_leaderboard`) and
the DecisionEvents Hamilton logged (each engine's vote as the live decision saw it, ml_brain
included, against the realized forward return after the decided bar:
:func:`event_leaderboard`). :func:`merged_leaderboard` takes an engine's logged-decision row
where it has at least ``min_votes`` votes and its bar row otherwise, and ranks again.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from trading_core.brain.records import ShadowResult
from trading_core.config.models import RegimeGatesSection
from trading_core.engines import ENGINE_NAMES, RULE_ENGINE_NAMES
from trading_core.regime import RegimeGates, auto_gate, engine_leaderboard
from trading_core.training.dataset import CoinFrame
from trading_core.types import REGIME_CODES, REGIMES, Regime


def universe_leaderboard(frames: Sequence[CoinFrame], *, window_bars: int) -> pl.DataFrame:
    """Hit rate and PnL contribution of each rule engine by regime over the last
    ``window_bars`` bars of every coin (the coins' windows pooled)."""
    if not frames:
        raise ValueError("no coins to rank engines on")
    parts = [
        (f.rule_signals[-window_bars:], f.regimes[-window_bars:], f.label_bps[-window_bars:])
        for f in frames
    ]
    signals = np.vstack([p[0] for p in parts])
    regimes = np.concatenate([p[1] for p in parts])
    forward = np.concatenate([p[2] for p in parts])
    return engine_leaderboard(
        signals, regimes, forward, list(RULE_ENGINE_NAMES), window_bars=signals.shape[0]
    )


def gate_overrides(leaderboard: pl.DataFrame, section: RegimeGatesSection) -> dict[str, Any]:
    """The gates payload for next week; ml_brain keeps its standing (it is not ranked here)."""
    current = RegimeGates.from_config(section)
    payload = auto_gate(
        leaderboard,
        current,
        min_hit_rate=section.auto_gating_min_hit_rate,
        min_votes=section.auto_gating_min_votes,
    )
    for regime, gate in payload.items():
        if regime != "ILLIQUID" and "ml_brain" in getattr(section, regime).enabled_engines:
            enabled = list(gate.get("enabled_engines", []))
            if "ml_brain" not in enabled:
                gate["enabled_engines"] = [*enabled, "ml_brain"]
            gate["disabled_engines"] = [
                e for e in gate.get("disabled_engines", []) if e != "ml_brain"
            ]
    return payload


def forward_returns_by_bar(frames: Iterable[CoinFrame]) -> dict[tuple[str, int], float]:
    """(symbol, bar open ms) -> the realized forward return (bps) after that bar, where known."""
    out: dict[tuple[str, int], float] = {}
    for frame in frames:
        for ms, value in zip(frame.timestamps_ms.tolist(), frame.label_bps.tolist(), strict=True):
            if math.isfinite(value):
                out[(frame.symbol, int(ms))] = float(value)
    return out


def event_leaderboard(
    events: Sequence[Mapping[str, Any]], forward_bps: Mapping[tuple[str, int], float]
) -> pl.DataFrame:
    """Hit rate and PnL contribution of all 23 engines by regime from logged DecisionEvents
    (``BrainLibrary.query_decision_events`` rows): each event's engine votes against the
    forward return after its bar (``forward_bps``; events without one are not counted)."""
    names = list(ENGINE_NAMES)
    column = {name: j for j, name in enumerate(names)}
    signals = np.zeros((len(events), len(names)))
    regimes = np.zeros(len(events), dtype=np.int8)
    forward = np.full(len(events), np.nan)
    for i, event in enumerate(events):
        stamp = event["timestamp"]
        moment = stamp if isinstance(stamp, datetime) else datetime.fromisoformat(str(stamp))
        forward[i] = forward_bps.get((str(event["symbol"]), _ms(moment)), np.nan)
        regimes[i] = REGIME_CODES[Regime(event["regime"])]
        for vote in event["engine_votes"]:
            if vote["engine"] in column:
                signals[i, column[vote["engine"]]] = float(vote["signal"])
    return engine_leaderboard(signals, regimes, forward, names, window_bars=max(len(events), 1))


def merged_leaderboard(
    events_board: pl.DataFrame, bars_board: pl.DataFrame, *, min_votes: int
) -> pl.DataFrame:
    """Per (regime, engine): the logged-decision row when it has >= ``min_votes`` votes, else
    the bar row (else the logged-decision row, e.g. ml_brain); ranked again within each regime
    (more PnL contribution, then hit rate, then registry order; engines without votes last).
    A ``source`` column says which row was taken."""
    if min_votes < 1:
        raise ValueError(f"min_votes {min_votes!r} must be >= 1")
    live = events_board.with_columns(pl.lit("decision_events").alias("source"))
    bars = bars_board.with_columns(pl.lit("bars").alias("source"))
    enough = live.filter(pl.col("n_votes") >= min_votes)
    keys = ["regime", "engine"]
    chosen = pl.concat(
        [
            enough,
            bars.join(enough.select(keys), on=keys, how="anti"),
            live.join(pl.concat([enough.select(keys), bars.select(keys)]), on=keys, how="anti"),
        ]
    )
    order = {name: i for i, name in enumerate(ENGINE_NAMES)}
    regime_order = {r.value: i for i, r in enumerate(REGIMES)}
    return (
        chosen.with_columns(
            (pl.col("n_votes") == 0).alias("__silent"),
            pl.col("engine").replace_strict(order, default=len(order)).alias("__order"),
            pl.col("regime").replace_strict(regime_order).alias("__regime_order"),
        )
        .sort(
            ["__regime_order", "__silent", "pnl_contribution_bps", "hit_rate", "__order"],
            descending=[False, False, True, True, False],
            nulls_last=True,
        )
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("regime").alias("rank"))
        .drop("__silent", "__order", "__regime_order")
    )


def shadow_standing(results: Iterable[ShadowResult], *, since: datetime) -> pl.DataFrame:
    """Per regime: the shadow challengers' evidence recorded since ``since`` (keys, bars, and the
    mean per-bar return difference challenger - champion in bps), the learned engine's side of
    the leaderboard (its models are promoted or rejected by the shadow evaluation, not gated)."""
    rows: dict[str, dict[str, Any]] = {}
    for result in results:
        if result.period_start < since:
            continue
        row = rows.setdefault(result.key.regime, {"keys": set(), "bars": 0, "diff": 0.0})
        row["keys"].add(result.key.slug)
        diffs = np.subtract(result.challenger_returns, result.champion_returns)
        row["bars"] += int(diffs.size)
        row["diff"] += float(diffs.sum())
    return pl.DataFrame(
        [
            {
                "regime": regime,
                "keys": len(row["keys"]),
                "bars": row["bars"],
                "mean_difference_bps": 1e4 * row["diff"] / row["bars"] if row["bars"] else None,
            }
            for regime, row in sorted(rows.items())
        ],
        schema={
            "regime": pl.String,
            "keys": pl.Int64,
            "bars": pl.Int64,
            "mean_difference_bps": pl.Float64,
        },
    )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
