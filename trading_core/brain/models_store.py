"""Model versions inside one transaction: key locks, registration, lookups, row -> record.

Every function takes an open :class:`Session`; the caller owns the transaction. Version
numbers come from a per-key counter row locked with ``SELECT ... FOR UPDATE`` (PostgreSQL;
SQLite serializes writers with ``BEGIN IMMEDIATE``), and the unique constraints of the schema
catch anything that slips past, which the caller retries.
"""

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trading_core.brain.artifacts import ArtifactRef
from trading_core.brain.db import dialect_insert
from trading_core.brain.records import (
    ARTIFACT_FORMATS,
    ModelKey,
    ModelVersion,
    ReleaseRole,
    StageChange,
    canonical_json,
    finite_floats,
    model_name,
    require_utc,
    sha256_hex,
)
from trading_core.brain.schema import ModelKeyRow, ModelVersionRow, StageHistoryRow
from trading_core.errors import DataValidationError, ModelNotFoundError
from trading_core.types import Stage


def lock_key(session: Session, key: ModelKey) -> ModelKeyRow:
    """The key's counter row, created if missing, locked until the transaction ends."""
    values = {"coin": key.coin, "regime": key.regime, "timeframe": key.timeframe}
    insert = dialect_insert(session, ModelKeyRow).values(**values, last_version=0)
    session.execute(insert.on_conflict_do_nothing(index_elements=list(values)))
    query = select(ModelKeyRow).filter_by(**values).with_for_update()
    return session.execute(query).scalar_one()


def key_of(row: ModelVersionRow) -> ModelKey:
    return ModelKey(row.coin, row.regime, row.timeframe)


def to_record(row: ModelVersionRow, role: ReleaseRole | None = None) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        key=key_of(row),
        version=row.version,
        created_at=row.created_at,
        stage=Stage(row.stage),
        metrics=dict(row.metrics),
        params=dict(row.params),
        feature_list=tuple(row.feature_list),
        training_data_hash=row.training_data_hash,
        artifact_sha256=row.artifact_sha256,
        artifact_uri=row.artifact_uri,
        artifact_format=row.artifact_format,
        artifact_size_bytes=row.artifact_size_bytes,
        partition_date=row.partition_date,
        reliability=None if row.reliability is None else dict(row.reliability),
        correlation=None if row.correlation is None else dict(row.correlation),
        role=role,
        validation=None if row.validation is None else dict(row.validation),
        serving_tables=None if row.serving_tables is None else dict(row.serving_tables),
    )


def history_record(entry: StageHistoryRow, name: str) -> StageChange:
    return StageChange(
        model_name=name,
        from_stage=None if entry.from_stage is None else Stage(entry.from_stage),
        to_stage=Stage(entry.to_stage),
        actor=entry.actor,
        reason=entry.reason,
        at=entry.at,
        statistics=entry.statistics,
    )


def params_digest(params: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``params`` (key order does not matter)."""
    return sha256_hex(canonical_json(dict(params), "params"))


def validated_correlation(
    correlation: Mapping[str, Mapping[str, float]] | None,
) -> dict[str, dict[str, float]] | None:
    """A copy with every coefficient checked to be finite and within [-1, 1]."""
    if correlation is None:
        return None
    out: dict[str, dict[str, float]] = {}
    for engine, row in correlation.items():
        values = finite_floats(row, f"correlation[{engine!r}]")
        bad = {other: rho for other, rho in values.items() if not -1.0 <= rho <= 1.0}
        if bad:
            raise DataValidationError(
                f"correlation[{engine!r}] {bad!r}: coefficients must be in [-1, 1]"
            )
        out[str(engine)] = values
    return out


def validated_reliability(reliability: Mapping[str, float] | None) -> dict[str, float] | None:
    if reliability is None:
        return None
    values = finite_floats(reliability, "reliability")
    negative = {engine: w for engine, w in values.items() if w < 0.0}
    if negative:
        raise DataValidationError(f"reliability {negative!r}: weights must be >= 0")
    return values


def validated_registration(
    *,
    metrics: Mapping[str, float],
    params: Mapping[str, Any],
    feature_list: Sequence[str],
    data_hash: str,
    created_at: datetime,
    partition_date: date,
    artifact_format: str,
) -> None:
    """Refuse bad registration inputs before anything is written, quoting the value."""
    finite_floats(metrics, "metrics")
    canonical_json(dict(params), "params")
    require_utc(created_at, "created_at")
    if isinstance(partition_date, datetime) or not isinstance(partition_date, date):
        raise DataValidationError(f"partition_date {partition_date!r} must be a datetime.date")
    if artifact_format not in ARTIFACT_FORMATS:
        raise DataValidationError(
            f"artifact_format {artifact_format!r}; allowed: {list(ARTIFACT_FORMATS)}"
        )
    if not data_hash or len(data_hash) > 128:
        raise DataValidationError(
            f"data_hash {data_hash!r} must be a non-empty string of <= 128 chars"
        )
    if isinstance(feature_list, str) or not all(isinstance(f, str) and f for f in feature_list):
        raise DataValidationError(
            f"feature_list {feature_list!r} must be a sequence of non-empty names"
        )
    if len(set(feature_list)) != len(feature_list):
        raise DataValidationError(f"feature_list {list(feature_list)!r} names a feature twice")


def find_by_identity(
    session: Session, key: ModelKey, data_hash: str, params_sha256: str
) -> ModelVersionRow | None:
    query = select(ModelVersionRow).filter_by(
        coin=key.coin,
        regime=key.regime,
        timeframe=key.timeframe,
        training_data_hash=data_hash,
        params_sha256=params_sha256,
    )
    return session.execute(query).scalar_one_or_none()


def insert_version(
    session: Session,
    key_row: ModelKeyRow,
    key: ModelKey,
    artifact: ArtifactRef,
    *,
    fields: Mapping[str, Any],
    created_at: datetime,
    actor: str,
    now: datetime,
) -> ModelVersionRow:
    """A new candidate version numbered from the locked counter, plus its history line."""
    version = key_row.last_version + 1
    key_row.last_version = version
    row = ModelVersionRow(
        name=model_name(key, version, created_at),
        coin=key.coin,
        regime=key.regime,
        timeframe=key.timeframe,
        version=version,
        created_at=created_at,
        stage=Stage.CANDIDATE.value,
        stage_changed_at=now,
        artifact_sha256=artifact.sha256,
        artifact_uri=artifact.uri,
        artifact_size_bytes=artifact.size_bytes,
        **fields,
    )
    session.add(row)
    session.flush()
    session.add(
        StageHistoryRow(
            model_version_id=row.id,
            from_stage=None,
            to_stage=Stage.CANDIDATE.value,
            actor=actor,
            reason="registered",
            at=now,
        )
    )
    return row


def get_row(session: Session, name: str, *, lock: bool = False) -> ModelVersionRow:
    query = select(ModelVersionRow).filter_by(name=name)
    row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None:
        raise ModelNotFoundError(f"no model version named {name!r}")
    return row


def get_version_row(session: Session, key: ModelKey, version: int) -> ModelVersionRow:
    query = select(ModelVersionRow).filter_by(
        coin=key.coin, regime=key.regime, timeframe=key.timeframe, version=version
    )
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise ModelNotFoundError(f"no version {version!r} of {key.slug}")
    return row


def stage_row(session: Session, key: ModelKey, stage: Stage) -> ModelVersionRow | None:
    """The key's model in ``stage`` (production and shadow hold at most one per key)."""
    query = select(ModelVersionRow).filter_by(
        coin=key.coin, regime=key.regime, timeframe=key.timeframe, stage=stage.value
    )
    return session.execute(query.order_by(ModelVersionRow.version.desc())).scalars().first()


def list_rows(
    session: Session,
    *,
    coin: str | None,
    regime: str | None,
    timeframe: str | None,
    stage: Stage | None,
) -> Sequence[ModelVersionRow]:
    query = select(ModelVersionRow)
    for column, value in (
        (ModelVersionRow.coin, coin),
        (ModelVersionRow.regime, regime),
        (ModelVersionRow.timeframe, timeframe),
        (ModelVersionRow.stage, None if stage is None else Stage(stage).value),
    ):
        if value is not None:
            query = query.where(column == value)
    order = (ModelVersionRow.coin, ModelVersionRow.regime, ModelVersionRow.timeframe)
    return session.execute(query.order_by(*order, ModelVersionRow.version)).scalars().all()
