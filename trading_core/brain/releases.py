"""Releases: the daily push Hamilton follows (which versions serve, which run in shadow).

A release is written in one transaction together with the stage changes it implies (its
production models become production, archiving their predecessors; its shadow models become
shadow), so a failure part-way leaves the library exactly as it was. The same content on the
same date is one release: re-running a day's push returns the existing release. A rollback
writes a new release equal to an earlier one (its ``rollback_of_id`` says which).

The daily push (:func:`push_daily`) is stricter than an operator's explicit release: content
equal to the latest release's (whatever its date) writes nothing and reports ``unchanged``, so
an unchanged day keeps the release's age; a day older than the latest release's date is
``refused_older_day`` (re-pushing day D after D+1 must not make D's content the latest).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal, get_args

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from trading_core.brain.lifecycle import change_stage
from trading_core.brain.models_store import get_row, lock_key, to_record
from trading_core.brain.records import (
    ModelVersion,
    Release,
    ReleaseRole,
    canonical_json,
    parse_model_name,
    sha256_hex,
)
from trading_core.brain.schema import ModelVersionRow, ReleaseEntryRow, ReleaseRow
from trading_core.errors import DataValidationError, ModelNotFoundError
from trading_core.types import Stage

_PG_RELEASE_LOCK_KEY: Final = 0x0B5A1_12E
_ROLE_STAGE: Final[Mapping[ReleaseRole, Stage]] = {
    "production": Stage.PRODUCTION,
    "shadow": Stage.SHADOW,
}


PushStatus = Literal["pushed", "unchanged", "refused_older_day", "nothing_to_release"]
PUSH_STATUSES: Final[tuple[str, ...]] = get_args(PushStatus)
# a push that leaves the latest release serving the day's content: the pipeline is healthy
PUSH_SUCCESSES: Final = frozenset({"pushed", "unchanged"})


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What a daily push did: ``release`` is the latest release after it (None when there is
    none), ``release_date`` the day that was pushed."""

    status: PushStatus
    release_date: date
    release: Release | None
    detail: str = ""


def decide_push(latest: tuple[date, str] | None, release_date: date, content: str) -> PushStatus:
    """The daily push rule, given the latest release's (date, content digest): an older day is
    refused (even with equal content: it must never look like the newest day), equal content is
    unchanged, anything else is pushed."""
    if latest is None:
        return "pushed"
    latest_date, latest_content = latest
    if release_date < latest_date:
        return "refused_older_day"
    return "unchanged" if content == latest_content else "pushed"


def validate_release_lists(production: Sequence[str], shadow: Sequence[str]) -> None:
    """Each name once, no name in both roles, at most one model per key and role."""
    for role, names in (("production", production), ("shadow", shadow)):
        if isinstance(names, str):
            raise DataValidationError(
                f"{role} must be a list of model names, got the string {names!r}"
            )
        dupes = sorted({n for n in names if list(names).count(n) > 1})
        if dupes:
            raise DataValidationError(f"{role} names {dupes} more than once")
    both = sorted(set(production) & set(shadow))
    if both:
        raise DataValidationError(f"models {both} are listed as both production and shadow")
    if not production and not shadow:
        raise DataValidationError("a release needs at least one production or shadow model")
    for role, names in (("production", production), ("shadow", shadow)):
        keys = [parse_model_name(n)[0].slug for n in names]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise DataValidationError(
                f"{role} lists several models of {twice}; at most one per key"
            )


def content_digest(production: Sequence[str], shadow: Sequence[str], gates: Any) -> str:
    """sha256 of what a release serves (order of the lists does not matter)."""
    content = {"production": sorted(production), "shadow": sorted(shadow), "gates": gates}
    return sha256_hex(canonical_json(content, "release content"))


def _serialize_releases(session: Session) -> None:
    # One release writer at a time keeps the parent chain linear (SQLite already serializes).
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_RELEASE_LOCK_KEY})


def latest_row(session: Session) -> ReleaseRow | None:
    query = select(ReleaseRow).order_by(ReleaseRow.id.desc()).limit(1)
    return session.execute(query).scalars().first()


def get_release_row(session: Session, release_id: int) -> ReleaseRow:
    row = session.get(ReleaseRow, release_id)
    if row is None:
        raise ModelNotFoundError(f"no release with id {release_id!r}")
    return row


def apply_stages(
    session: Session,
    production: Sequence[str],
    shadow: Sequence[str],
    *,
    actor: str,
    reason: str,
    at: datetime,
) -> list[tuple[ModelVersionRow, ReleaseRole]]:
    """Put each model in the stage of its role (archiving the key's previous holder)."""
    # Sorted order: concurrent writers lock keys in the same order (no deadlocks).
    entries: list[tuple[str, ReleaseRole]] = sorted(
        [(n, "production") for n in production] + [(n, "shadow") for n in shadow]
    )
    applied: list[tuple[ModelVersionRow, ReleaseRole]] = []
    for name, role in entries:
        lock_key(session, parse_model_name(name)[0])  # lock first: then read the fresh row
        model = get_row(session, name)
        change_stage(
            session, model, _ROLE_STAGE[role], actor=actor, reason=reason, statistics=None, at=at
        )
        applied.append((model, role))
    return applied


def insert_release(
    session: Session,
    *,
    release_date: date,
    production: Sequence[str],
    shadow: Sequence[str],
    gates: Mapping[str, Any] | None,
    created_by: str,
    note: str,
    at: datetime,
    rollback_of_id: int | None = None,
) -> ReleaseRow:
    """Write the release and apply its stages (the caller's transaction makes it atomic).

    Same date and content as an existing release: that release, nothing changed, unless a
    release with other content was written after it (the stages went away and came back, e.g. a
    rollback of one key): then a new release, so that the latest release is what serves. A
    rollback whose content already is the latest release re-applies its stages and returns it.
    """
    _serialize_releases(session)
    gates_data = None if gates is None else dict(gates)
    content = content_digest(production, shadow, gates_data)
    parent = latest_row(session)
    idempotency = content
    if rollback_of_id is not None:
        if parent is not None and parent.content_sha256 == content:
            apply_stages(session, production, shadow, actor=created_by, reason=note, at=at)
            return parent
        idempotency = sha256_hex(
            f"{content}|rollback_of={rollback_of_id}|parent={parent.id if parent else None}"
        )
    elif (
        parent is not None
        and parent.content_sha256 == content
        and parent.release_date == release_date
    ):
        return parent
    existing = _existing(session, release_date, idempotency)
    if rollback_of_id is None and existing is not None and parent is not None:
        # existing is not the latest (that case returned above): the content came back
        idempotency = sha256_hex(f"{content}|parent={parent.id}")
        existing = _existing(session, release_date, idempotency)
    if existing is not None:
        return existing
    row = ReleaseRow(
        release_date=release_date,
        created_at=at,
        created_by=created_by,
        parent_id=None if parent is None else parent.id,
        rollback_of_id=rollback_of_id,
        note=note,
        content_sha256=content,
        idempotency_sha256=idempotency,
        gates=gates_data,
    )
    session.add(row)
    session.flush()
    reason = note or f"release {row.id} of {release_date.isoformat()}"
    for model, role in apply_stages(
        session, production, shadow, actor=created_by, reason=reason, at=at
    ):
        session.add(ReleaseEntryRow(release_id=row.id, model_version_id=model.id, role=role))
    session.flush()
    return row


def push_daily(
    session: Session,
    *,
    release_date: date,
    production: Sequence[str],
    shadow: Sequence[str],
    gates: Mapping[str, Any] | None,
    created_by: str,
    note: str,
    at: datetime,
) -> tuple[PushStatus, ReleaseRow | None]:
    """The daily push (module docstring): a new release only when :func:`decide_push` says
    ``pushed``; otherwise no row and the latest release (caller's transaction)."""
    _serialize_releases(session)
    content = content_digest(production, shadow, None if gates is None else dict(gates))
    parent = latest_row(session)
    latest = None if parent is None else (parent.release_date, parent.content_sha256)
    status = decide_push(latest, release_date, content)
    if status != "pushed":
        return status, parent
    row = insert_release(
        session, release_date=release_date, production=production, shadow=shadow, gates=gates,
        created_by=created_by, note=note, at=at,
    )  # fmt: skip
    return status, row


def _existing(session: Session, release_date: date, idempotency: str) -> ReleaseRow | None:
    query = select(ReleaseRow).filter_by(release_date=release_date, idempotency_sha256=idempotency)
    return session.execute(query).scalar_one_or_none()


def release_entries(session: Session, release_id: int) -> list[tuple[ModelVersionRow, str]]:
    query = (
        select(ModelVersionRow, ReleaseEntryRow.role)
        .join(ReleaseEntryRow, ReleaseEntryRow.model_version_id == ModelVersionRow.id)
        .where(ReleaseEntryRow.release_id == release_id)
        .order_by(ReleaseEntryRow.role, ModelVersionRow.name)
    )
    return [(model, role) for model, role in session.execute(query).all()]


def to_release(session: Session, row: ReleaseRow) -> Release:
    entries = release_entries(session, row.id)
    return Release(
        id=row.id,
        release_date=row.release_date,
        created_at=row.created_at,
        created_by=row.created_by,
        parent_id=row.parent_id,
        rollback_of_id=row.rollback_of_id,
        note=row.note,
        content_sha256=row.content_sha256,
        production=tuple(m.name for m, role in entries if role == "production"),
        shadow=tuple(m.name for m, role in entries if role == "shadow"),
        gates=row.gates,
    )


def models_of(session: Session, release_id: int) -> list[ModelVersion]:
    get_release_row(session, release_id)
    out: list[ModelVersion] = []
    for model, role in release_entries(session, release_id):
        out.append(to_record(model, role="production" if role == "production" else "shadow"))
    return out


def list_rows(session: Session, limit: int | None) -> Sequence[ReleaseRow]:
    query = select(ReleaseRow).order_by(ReleaseRow.id.desc())
    return session.execute(query if limit is None else query.limit(limit)).scalars().all()


def rollback_lists(session: Session, release_id: int) -> tuple[list[str], list[str]]:
    """The earlier release's production models, and those of its shadow models that can
    still enter shadow (an archived model never comes back as a shadow)."""
    production: list[str] = []
    shadow: list[str] = []
    for model, role in release_entries(session, release_id):
        if role == "production":
            production.append(model.name)
        elif Stage(model.stage) in {Stage.CANDIDATE, Stage.SHADOW}:
            shadow.append(model.name)
    return production, shadow
