"""Liquidity rankings, engine reliability, shadow results and regime-gate overrides.

Rankings and reliability are snapshots: saving one replaces the previous rows for the same
date (or key) in one transaction, so a re-run is idempotent. Gate overrides are append-only
and therefore their own audit trail.
"""

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

import polars as pl
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, aliased

from trading_core.brain.models_store import get_row, key_of
from trading_core.brain.records import (
    EngineReliability,
    ModelKey,
    RegimeGateOverride,
    ShadowResult,
    canonical_json,
    finite_floats,
    require_utc,
)
from trading_core.brain.schema import (
    SHADOW_DECISIONS,
    EngineReliabilityRow,
    LiquidityRankingRow,
    ModelVersionRow,
    RegimeGateOverrideRow,
    ShadowResultRow,
)
from trading_core.errors import DataValidationError

RANKING_SCHEMA: Final = pl.Schema(
    {
        "symbol": pl.String,
        "rank": pl.Int64,
        "liquidity_score": pl.Float64,
        "daily_volume_usd": pl.Float64,
        "spread_bps": pl.Float64,
        "age_days": pl.Int64,
        "selected": pl.Boolean,
    }
)


def validated_ranking(frame: pl.DataFrame, selected_top: int | None = None) -> pl.DataFrame:
    """The frame (e.g. ``liquidity_ranking(...).ranked``) cast to :data:`RANKING_SCHEMA`.

    Without a ``selected`` column, the top ``selected_top`` ranks are selected (all, if None:
    every ranked coin passed the filters). Names missing columns, duplicate symbols or ranks,
    nulls and non-finite numbers. Other columns are dropped.
    """
    if "selected" not in frame.columns:
        if selected_top is not None and selected_top < 0:
            raise DataValidationError(f"selected_top {selected_top!r} must be >= 0")
        top = pl.lit(value=True) if selected_top is None else pl.col("rank") <= selected_top
        frame = frame.with_columns(top.alias("selected")) if "rank" in frame.columns else frame
    missing = [c for c in RANKING_SCHEMA.names() if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"ranking frame lacks columns {missing}; required: {RANKING_SCHEMA.names()}"
        )
    out = frame.select(RANKING_SCHEMA.names()).cast(RANKING_SCHEMA, strict=True)
    nulls = [c for c in out.columns if out[c].null_count()]
    if nulls:
        raise DataValidationError(f"ranking columns {nulls} contain nulls")
    for column in ("liquidity_score", "daily_volume_usd", "spread_bps"):
        if not out[column].is_finite().all():
            raise DataValidationError(f"ranking column {column!r} has NaN or infinite values")
    for column in ("symbol", "rank"):
        dupes = out.filter(out[column].is_duplicated())[column].unique().sort().to_list()
        if dupes:
            raise DataValidationError(f"ranking column {column!r} repeats {dupes[:10]}")
    low_ranks = out.filter(pl.col("rank") < 1)["rank"].to_list()
    if low_ranks:
        raise DataValidationError(f"ranks must be >= 1, got {low_ranks[:10]}")
    return out.sort("rank")


def replace_ranking(session: Session, as_of: date, frame: pl.DataFrame) -> int:
    session.execute(delete(LiquidityRankingRow).where(LiquidityRankingRow.as_of == as_of))
    rows = [{"as_of": as_of, **row} for row in frame.iter_rows(named=True)]
    if rows:
        session.execute(insert(LiquidityRankingRow), rows)
    return len(rows)


def load_ranking(session: Session, as_of: date) -> pl.DataFrame:
    query = (
        select(*(getattr(LiquidityRankingRow, c) for c in RANKING_SCHEMA.names()))
        .where(LiquidityRankingRow.as_of == as_of)
        .order_by(LiquidityRankingRow.rank)
    )
    records = [tuple(r) for r in session.execute(query).all()]
    return pl.DataFrame(records, schema=RANKING_SCHEMA, orient="row")


def replace_reliability(
    session: Session, key: ModelKey, records: Sequence[EngineReliability], updated_at: datetime
) -> None:
    engines = [r.engine for r in records]
    if len(set(engines)) != len(engines):
        raise DataValidationError(f"engine reliability lists an engine twice: {sorted(engines)}")
    require_utc(updated_at, "updated_at")
    where = {"coin": key.coin, "regime": key.regime, "timeframe": key.timeframe}
    session.execute(delete(EngineReliabilityRow).filter_by(**where))
    session.add_all(
        EngineReliabilityRow(
            **where,
            engine=r.engine,
            reliability=r.reliability,
            hit_rate=r.hit_rate,
            n_obs=r.n_obs,
            updated_at=updated_at,
        )
        for r in records
    )


def load_reliability(session: Session, key: ModelKey) -> dict[str, EngineReliability]:
    query = (
        select(EngineReliabilityRow)
        .filter_by(coin=key.coin, regime=key.regime, timeframe=key.timeframe)
        .order_by(EngineReliabilityRow.engine)
    )
    return {
        row.engine: EngineReliability(
            engine=row.engine,
            reliability=row.reliability,
            hit_rate=row.hit_rate,
            n_obs=row.n_obs,
            updated_at=row.updated_at,
        )
        for row in session.execute(query).scalars()
    }


def _returns(values: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise DataValidationError(f"{what} contain NaN or infinite values")
    return out


def upsert_shadow_result(
    session: Session,
    *,
    challenger: str,
    champion: str | None,
    period_start: datetime,
    period_end: datetime,
    challenger_returns: Sequence[float],
    champion_returns: Sequence[float],
    statistics: Mapping[str, Any],
    decision: str,
    at: datetime,
) -> ShadowResultRow:
    """Record one shadow period; recording the same (challenger, period) again replaces it."""
    if decision not in SHADOW_DECISIONS:
        raise DataValidationError(f"decision {decision!r}; allowed: {list(SHADOW_DECISIONS)}")
    if require_utc(period_end, "period_end") <= require_utc(period_start, "period_start"):
        raise DataValidationError(
            f"period_end {period_end} must be after period_start {period_start}"
        )
    canonical_json(dict(statistics), "statistics")
    challenger_row = get_row(session, challenger)
    champion_row = None if champion is None else get_row(session, champion)
    if champion_row is not None and key_of(champion_row) != key_of(challenger_row):
        raise DataValidationError(
            f"champion {champion!r} and challenger {challenger!r} have different keys"
        )
    session.execute(
        delete(ShadowResultRow).filter_by(
            challenger_id=challenger_row.id, period_start=period_start, period_end=period_end
        )
    )
    row = ShadowResultRow(
        coin=challenger_row.coin,
        regime=challenger_row.regime,
        timeframe=challenger_row.timeframe,
        challenger_id=challenger_row.id,
        champion_id=None if champion_row is None else champion_row.id,
        period_start=period_start,
        period_end=period_end,
        challenger_returns=_returns(challenger_returns, "challenger_returns"),
        champion_returns=_returns(champion_returns, "champion_returns"),
        statistics=dict(statistics),
        decision=decision,
        recorded_at=at,
    )
    session.add(row)
    session.flush()
    return row


def shadow_results(session: Session, key: ModelKey) -> list[ShadowResult]:
    challenger = aliased(ModelVersionRow, name="challenger")
    champion = aliased(ModelVersionRow, name="champion")
    query = (
        select(ShadowResultRow, challenger.name, champion.name)
        .join(challenger, challenger.id == ShadowResultRow.challenger_id)
        .outerjoin(champion, champion.id == ShadowResultRow.champion_id)
        .where(
            ShadowResultRow.coin == key.coin,
            ShadowResultRow.regime == key.regime,
            ShadowResultRow.timeframe == key.timeframe,
        )
        .order_by(ShadowResultRow.period_end, ShadowResultRow.id)
    )
    return [
        ShadowResult(
            key=key,
            challenger=challenger_name,
            champion=champion_name,
            period_start=row.period_start,
            period_end=row.period_end,
            challenger_returns=tuple(row.challenger_returns),
            champion_returns=tuple(row.champion_returns),
            statistics=dict(row.statistics),
            decision=row.decision,
            recorded_at=row.recorded_at,
        )
        for row, challenger_name, champion_name in session.execute(query).all()
    ]


def gate_fields(gate: Any, regime: str) -> dict[str, Any]:
    """enabled/disabled engines and multipliers from a config ``RegimeGate`` or a mapping."""
    data = gate.model_dump() if hasattr(gate, "model_dump") else dict(gate)
    unknown = set(data) - {"enabled_engines", "disabled_engines", "weight_multipliers"}
    if unknown:
        raise DataValidationError(f"gate of {regime}: unknown keys {sorted(unknown)}")
    return {
        "enabled_engines": tuple(data.get("enabled_engines", ())),
        "disabled_engines": tuple(data.get("disabled_engines", ())),
        "weight_multipliers": finite_floats(
            data.get("weight_multipliers") or {}, f"{regime}.weight_multipliers"
        ),
    }


def append_gates(
    session: Session,
    week_start: date,
    gates: Mapping[str, Any],
    *,
    actor: str,
    reason: str,
    at: datetime,
) -> list[RegimeGateOverride]:
    if not gates:
        raise DataValidationError("gates is empty: name at least one regime")
    if not actor.strip() or not reason.strip():
        raise DataValidationError(
            f"actor {actor!r} and reason {reason!r} must both be given (audit)"
        )
    records = [
        RegimeGateOverride(
            week_start=week_start,
            regime=regime,
            actor=actor,
            reason=reason,
            created_at=at,
            **gate_fields(gate, regime),
        )
        for regime, gate in sorted(gates.items())
    ]
    for record in records:
        session.add(
            RegimeGateOverrideRow(
                week_start=record.week_start,
                regime=record.regime,
                enabled_engines=list(record.enabled_engines),
                disabled_engines=list(record.disabled_engines),
                weight_multipliers=dict(record.weight_multipliers),
                actor=record.actor,
                reason=record.reason,
                created_at=record.created_at,
            )
        )
    return records


def gate_history(
    session: Session, *, regime: str | None, as_of: date | None
) -> list[RegimeGateOverride]:
    """Every override, oldest first (optionally of one regime, effective on/before ``as_of``)."""
    query = select(RegimeGateOverrideRow)
    if regime is not None:
        query = query.where(RegimeGateOverrideRow.regime == regime)
    if as_of is not None:
        query = query.where(RegimeGateOverrideRow.week_start <= as_of)
    query = query.order_by(RegimeGateOverrideRow.week_start, RegimeGateOverrideRow.id)
    return [
        RegimeGateOverride(
            week_start=row.week_start,
            regime=row.regime,
            enabled_engines=tuple(row.enabled_engines),
            disabled_engines=tuple(row.disabled_engines),
            weight_multipliers=dict(row.weight_multipliers),
            actor=row.actor,
            reason=row.reason,
            created_at=row.created_at,
        )
        for row in session.execute(query).scalars()
    ]
