"""Stage lifecycle of a model version: allowed transitions, promotion, rollback, audit trail.

::

    candidate -> shadow | production | archived
    shadow    -> production | archived
    production -> archived
    archived  -> production            (rollback only brings a model back to serve)

Each key has at most one production and at most one shadow model: entering either stage
archives the model that held it, in the same transaction, and both moves are written to
``stage_history`` (who, when, why, with the statistics behind the decision). A decision that
keeps a model where it is (a review) is written too, with ``from_stage == to_stage``.
"""

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from trading_core.brain.models_store import get_version_row, key_of, lock_key, stage_row
from trading_core.brain.records import ModelKey, canonical_json
from trading_core.brain.schema import ModelVersionRow, StageHistoryRow
from trading_core.errors import (
    BrainLibraryError,
    DataValidationError,
    ModelNotFoundError,
    StageTransitionError,
)
from trading_core.types import Stage

ALLOWED_TRANSITIONS: Final[Mapping[Stage, frozenset[Stage]]] = MappingProxyType(
    {
        Stage.CANDIDATE: frozenset({Stage.SHADOW, Stage.PRODUCTION, Stage.ARCHIVED}),
        Stage.SHADOW: frozenset({Stage.PRODUCTION, Stage.ARCHIVED}),
        Stage.PRODUCTION: frozenset({Stage.ARCHIVED}),
        Stage.ARCHIVED: frozenset({Stage.PRODUCTION}),
    }
)
_EXCLUSIVE_STAGES: Final = frozenset({Stage.PRODUCTION, Stage.SHADOW})


def check_transition(name: str, from_stage: Stage, to_stage: Stage) -> None:
    """Raise :class:`StageTransitionError` naming from, to and what is allowed."""
    allowed = ALLOWED_TRANSITIONS[from_stage]
    if to_stage not in allowed:
        names = ", ".join(sorted(s.value for s in allowed)) or "none"
        raise StageTransitionError(
            f"model {name!r}: {from_stage.value} -> {to_stage.value} is not allowed; "
            f"from {from_stage.value} allowed: {names}"
        )


def _move(
    session: Session,
    row: ModelVersionRow,
    to_stage: Stage,
    *,
    actor: str,
    reason: str,
    statistics: Mapping[str, Any] | None,
    at: datetime,
) -> None:
    from_stage = Stage(row.stage)
    check_transition(row.name, from_stage, to_stage)
    row.stage = to_stage.value
    row.stage_changed_at = at
    session.add(
        StageHistoryRow(
            model_version_id=row.id,
            from_stage=from_stage.value,
            to_stage=to_stage.value,
            actor=actor,
            reason=reason,
            at=at,
            statistics=None if statistics is None else dict(statistics),
        )
    )
    # Flush now: the partial unique indexes check each UPDATE, so order matters.
    session.flush()


def change_stage(
    session: Session,
    row: ModelVersionRow,
    to_stage: Stage,
    *,
    actor: str,
    reason: str,
    statistics: Mapping[str, Any] | None,
    at: datetime,
) -> bool:
    """Move ``row`` to ``to_stage``; the holder of an exclusive stage is archived first.

    Returns False (and records nothing) when the model already is in ``to_stage``.
    """
    _check_audit(actor, reason, statistics)
    if Stage(row.stage) == to_stage:
        return False
    check_transition(row.name, Stage(row.stage), to_stage)
    if to_stage in _EXCLUSIVE_STAGES:
        holder = stage_row(session, key_of(row), to_stage)
        if holder is not None and holder.id != row.id:
            why = f"replaced by {row.name}: {reason}"
            _move(session, holder, Stage.ARCHIVED, actor=actor, reason=why, statistics=None, at=at)
    _move(session, row, to_stage, actor=actor, reason=reason, statistics=statistics, at=at)
    return True


def review(
    session: Session,
    row: ModelVersionRow,
    *,
    actor: str,
    reason: str,
    statistics: Mapping[str, Any] | None,
    at: datetime,
) -> None:
    """An audit entry that changes nothing: a decision to keep the model where it is (e.g. a
    shadow test that keeps waiting), recorded with ``from_stage == to_stage``."""
    _check_audit(actor, reason, statistics)
    stage = Stage(row.stage).value
    session.add(
        StageHistoryRow(
            model_version_id=row.id,
            from_stage=stage,
            to_stage=stage,
            actor=actor,
            reason=reason,
            at=at,
            statistics=None if statistics is None else dict(statistics),
        )
    )
    session.flush()


def _check_audit(actor: str, reason: str, statistics: Mapping[str, Any] | None) -> None:
    if not actor.strip():
        raise DataValidationError(f"actor {actor!r} must name who made the change")
    if not reason.strip():
        raise DataValidationError(f"reason {reason!r} must say why the stage changes")
    if statistics is not None:
        canonical_json(dict(statistics), "statistics")


def previous_production(session: Session, key: ModelKey, current_id: int | None) -> ModelVersionRow:
    """The version of ``key`` that most recently entered production before the current one."""
    query = (
        select(ModelVersionRow)
        .join(StageHistoryRow, StageHistoryRow.model_version_id == ModelVersionRow.id)
        .where(
            ModelVersionRow.coin == key.coin,
            ModelVersionRow.regime == key.regime,
            ModelVersionRow.timeframe == key.timeframe,
            StageHistoryRow.to_stage == Stage.PRODUCTION.value,
            # a review (from == to) is no entry into production
            or_(
                StageHistoryRow.from_stage.is_(None),
                StageHistoryRow.from_stage != StageHistoryRow.to_stage,
            ),
        )
        .order_by(StageHistoryRow.at.desc(), StageHistoryRow.id.desc())
    )
    if current_id is not None:
        query = query.where(ModelVersionRow.id != current_id)
    row = session.execute(query.limit(1)).scalars().first()
    if row is None:
        raise ModelNotFoundError(
            f"{key.slug} has no earlier production version to roll back to; pass to_version"
        )
    return row


def rollback_key(
    session: Session,
    key: ModelKey,
    *,
    to_version: int | None,
    actor: str,
    reason: str,
    at: datetime,
) -> ModelVersionRow:
    """Bring the previous (or the given) version back to production; archive the current one."""
    _check_audit(actor, reason, None)
    lock_key(session, key)
    current = stage_row(session, key, Stage.PRODUCTION)
    current_id = None if current is None else current.id
    if to_version is None:
        target = previous_production(session, key, current_id)
    else:
        target = get_version_row(session, key, to_version)
    if target.id == current_id:
        raise BrainLibraryError(f"{target.name} already is the production model of {key.slug}")
    why = f"rollback to {target.name}: {reason}"
    if current is not None:
        _move(session, current, Stage.ARCHIVED, actor=actor, reason=why, statistics=None, at=at)
    change_stage(session, target, Stage.PRODUCTION, actor=actor, reason=why, statistics=None, at=at)
    return target


def history_rows(session: Session, model_ids: list[int]) -> list[tuple[StageHistoryRow, str]]:
    query = (
        select(StageHistoryRow, ModelVersionRow.name)
        .join(ModelVersionRow, StageHistoryRow.model_version_id == ModelVersionRow.id)
        .where(StageHistoryRow.model_version_id.in_(model_ids))
        .order_by(StageHistoryRow.at, StageHistoryRow.id)
    )
    return [(entry, name) for entry, name in session.execute(query).all()]
