"""SQLAlchemy 2 schema of the Brain Library (the migrations in ``migrations/versions`` build it).

Invariants live in the database, not only in Python, so that several writers (Dagster
processes, Dask-driver threads, a CLI) cannot break them: one version number per key
(unique), one registration per (key, training data, params), at most one production and one
shadow model per key (partial unique indexes), one release per (date, content), one decision
event per event id, one order execution per client order id.
"""

from datetime import UTC, date, datetime
from typing import Any, ClassVar, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
STAGES_SQL: Final = "'candidate', 'shadow', 'production', 'archived'"
SHADOW_DECISIONS: Final[tuple[str, ...]] = ("promote", "reject", "continue")
# An order is 'pending' (accepted, maybe partially filled) until it reaches a final status.
EXECUTION_STATUSES: Final[tuple[str, ...]] = (
    "pending",
    "filled",
    "canceled",
    "rejected",
    "expired",
)
FINAL_EXECUTION_STATUSES: Final = frozenset(EXECUTION_STATUSES) - {"pending"}
BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out. SQLite keeps naive UTC text; PostgreSQL timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"datetime {value!r} must be timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class ModelKeyRow(Base):
    """One row per (coin, regime, timeframe): the version counter, locked while a key changes."""

    __tablename__ = "model_keys"
    __table_args__ = (UniqueConstraint("coin", "regime", "timeframe"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    coin: Mapped[str] = mapped_column(String(20))
    regime: Mapped[str] = mapped_column(String(16))
    timeframe: Mapped[str] = mapped_column(String(8))
    last_version: Mapped[int] = mapped_column(Integer, default=0)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint(
            "coin", "regime", "timeframe", "version", name="uq_model_versions_key_version"
        ),
        UniqueConstraint(
            "coin",
            "regime",
            "timeframe",
            "training_data_hash",
            "params_sha256",
            name="uq_model_versions_identity",
        ),
        CheckConstraint(f"stage IN ({STAGES_SQL})", name="stage"),
        CheckConstraint("artifact_format IN ('ubj', 'json')", name="artifact_format"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_model_versions_key_stage", "coin", "regime", "timeframe", "stage"),
        Index("ix_model_versions_stage", "stage"),
        Index(
            "ux_model_versions_one_production",
            "coin",
            "regime",
            "timeframe",
            unique=True,
            sqlite_where=text("stage = 'production'"),
            postgresql_where=text("stage = 'production'"),
        ),
        Index(
            "ux_model_versions_one_shadow",
            "coin",
            "regime",
            "timeframe",
            unique=True,
            sqlite_where=text("stage = 'shadow'"),
            postgresql_where=text("stage = 'shadow'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    coin: Mapped[str] = mapped_column(String(20))
    regime: Mapped[str] = mapped_column(String(16))
    timeframe: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    stage: Mapped[str] = mapped_column(String(16))
    stage_changed_at: Mapped[datetime]
    metrics: Mapped[dict[str, Any]]
    params: Mapped[dict[str, Any]]
    params_sha256: Mapped[str] = mapped_column(String(64))
    feature_list: Mapped[list[str]] = mapped_column(JSON)
    training_data_hash: Mapped[str] = mapped_column(String(128))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    artifact_uri: Mapped[str] = mapped_column(Text)
    artifact_format: Mapped[str] = mapped_column(String(8))
    artifact_size_bytes: Mapped[int] = mapped_column(BigInteger)
    partition_date: Mapped[date] = mapped_column(Date)
    reliability: Mapped[dict[str, Any] | None]
    correlation: Mapped[dict[str, Any] | None]
    # out-of-sample walk-forward results (windows, eligibility) and the consensus tables the
    # coin x timeframe serves with (correlation divisors, information coefficients)
    validation: Mapped[dict[str, Any] | None]
    serving_tables: Mapped[dict[str, Any] | None]


class StageHistoryRow(Base):
    """Append-only audit trail of every stage change (registration included)."""

    __tablename__ = "stage_history"
    __table_args__ = (
        CheckConstraint(f"to_stage IN ({STAGES_SQL})", name="to_stage"),
        Index("ix_stage_history_model_at", "model_version_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
    statistics: Mapped[dict[str, Any] | None]


class ReleaseRow(Base):
    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("release_date", "idempotency_sha256", name="uq_releases_date_content"),
        Index("ix_releases_release_date", "release_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    release_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))
    rollback_of_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))
    note: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    idempotency_sha256: Mapped[str] = mapped_column(String(64))
    gates: Mapped[dict[str, Any] | None]


class ReleaseEntryRow(Base):
    __tablename__ = "release_entries"
    __table_args__ = (
        UniqueConstraint("release_id", "model_version_id"),
        CheckConstraint("role IN ('production', 'shadow')", name="role"),
        Index("ix_release_entries_model_version_id", "model_version_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    role: Mapped[str] = mapped_column(String(16))


class LiquidityRankingRow(Base):
    __tablename__ = "liquidity_rankings"
    __table_args__ = (UniqueConstraint("as_of", "rank"),)

    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    liquidity_score: Mapped[float] = mapped_column(Float)
    daily_volume_usd: Mapped[float] = mapped_column(Float)
    spread_bps: Mapped[float] = mapped_column(Float)
    age_days: Mapped[int] = mapped_column(Integer)
    selected: Mapped[bool] = mapped_column(Boolean)


class EngineReliabilityRow(Base):
    __tablename__ = "engine_reliability"

    coin: Mapped[str] = mapped_column(String(20), primary_key=True)
    regime: Mapped[str] = mapped_column(String(16), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    engine: Mapped[str] = mapped_column(String(64), primary_key=True)
    reliability: Mapped[float] = mapped_column(Float)
    hit_rate: Mapped[float] = mapped_column(Float)
    n_obs: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class DecisionEventRow(Base):
    __tablename__ = "decision_events"
    __table_args__ = (
        CheckConstraint("action IN ('buy', 'sell', 'hold')", name="action"),
        Index("ix_decision_events_symbol_timestamp", "symbol", "timestamp"),
        Index("ix_decision_events_timestamp", "timestamp"),
        Index("ix_decision_events_release_id", "release_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    timestamp: Mapped[datetime]
    symbol: Mapped[str] = mapped_column(String(32))
    regime: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(8))
    consensus_score: Mapped[float] = mapped_column(Float)
    expected_edge_bps: Mapped[float] = mapped_column(Float)
    costs_bps: Mapped[float] = mapped_column(Float)
    net_edge_bps: Mapped[float] = mapped_column(Float)
    risk_preset: Mapped[str] = mapped_column(String(32))
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))
    shadow: Mapped[bool] = mapped_column(Boolean)
    model_version: Mapped[str | None] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime]


class TradeOutcomeRow(Base):
    __tablename__ = "trade_outcomes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("decision_events.event_id"), unique=True)
    fill_price: Mapped[float] = mapped_column(Float)
    pnl_usd: Mapped[float] = mapped_column(Float)
    fees_usd: Mapped[float] = mapped_column(Float)
    closed_at: Mapped[datetime]
    details: Mapped[dict[str, Any] | None]


class OrderExecutionRow(Base):
    """The execution of one order (upserted by client order id as reports arrive) and what it
    cost against the decision's reference price; ``event_id`` is None for orders without a
    decision (a kill-switch flatten)."""

    __tablename__ = "order_executions"
    __table_args__ = (
        CheckConstraint("side IN ('buy', 'sell')", name="side"),
        CheckConstraint(
            f"status IN ({', '.join(repr(s) for s in EXECUTION_STATUSES)})", name="status"
        ),
        CheckConstraint("filled_qty >= 0", name="filled_qty_nonnegative"),
        Index("ix_order_executions_symbol_updated_at", "symbol", "updated_at"),
        Index("ix_order_executions_event_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("decision_events.event_id"))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str] = mapped_column(String(40))
    requested_qty: Mapped[float] = mapped_column(Float)
    filled_qty: Mapped[float] = mapped_column(Float)
    avg_fill_price: Mapped[float | None] = mapped_column(Float)
    fee_usd: Mapped[float] = mapped_column(Float)
    reference_price: Mapped[float] = mapped_column(Float)
    expected_cost_bps: Mapped[float] = mapped_column(Float)
    realized_cost_bps: Mapped[float | None] = mapped_column(Float)
    realized_fee_bps: Mapped[float | None] = mapped_column(Float)
    realized_price_impact_bps: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    details: Mapped[dict[str, Any]]


class ShadowResultRow(Base):
    __tablename__ = "shadow_results"
    __table_args__ = (
        UniqueConstraint(
            "challenger_id", "period_start", "period_end", name="uq_shadow_results_period"
        ),
        CheckConstraint("decision IN ('promote', 'reject', 'continue')", name="decision"),
        Index("ix_shadow_results_key_period_end", "coin", "regime", "timeframe", "period_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coin: Mapped[str] = mapped_column(String(20))
    regime: Mapped[str] = mapped_column(String(16))
    timeframe: Mapped[str] = mapped_column(String(8))
    challenger_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    champion_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    challenger_returns: Mapped[list[float]] = mapped_column(JSON)
    champion_returns: Mapped[list[float]] = mapped_column(JSON)
    statistics: Mapped[dict[str, Any]]
    decision: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime]


class RegimeGateOverrideRow(Base):
    """Append-only: every change is a new row, so the table is its own audit trail."""

    __tablename__ = "regime_gate_overrides"
    __table_args__ = (Index("ix_regime_gate_overrides_regime_week", "regime", "week_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    week_start: Mapped[date] = mapped_column(Date)
    regime: Mapped[str] = mapped_column(String(16))
    enabled_engines: Mapped[list[str]] = mapped_column(JSON)
    disabled_engines: Mapped[list[str]] = mapped_column(JSON)
    weight_multipliers: Mapped[dict[str, Any]]
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
