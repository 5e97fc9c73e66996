"""Decision events and trade outcomes in the Brain Library database.

Hamilton buffers events and flushes them; a flush that is retried after a crash or a timeout
must not duplicate anything. Each event therefore carries an id derived from what identifies
it (symbol, bar timestamp, shadow flag, model version) and the table refuses a second row
with the same id (``INSERT ... ON CONFLICT DO NOTHING``).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trading_core.brain.db import dialect_insert
from trading_core.brain.records import canonical_json, finite_floats, require_utc, sha256_hex
from trading_core.brain.schema import DecisionEventRow, TradeOutcomeRow
from trading_core.errors import BrainLibraryError, DataValidationError
from trading_core.events import DecisionEvent
from trading_core.types import Action


def model_version_of(event: DecisionEvent) -> str | None:
    """The model version an event was decided with (None: no model)."""
    return event.model_version


def decision_event_id(event: DecisionEvent, *, shadow: bool) -> str:
    """sha256 of symbol | bar timestamp (UTC ISO) | shadow | model version."""
    stamp = event.timestamp.isoformat()
    return sha256_hex(f"{event.symbol}|{stamp}|{int(shadow)}|{model_version_of(event) or ''}")


def as_event(item: DecisionEvent | Mapping[str, Any], index: int) -> DecisionEvent:
    if isinstance(item, DecisionEvent):
        return item
    try:
        return DecisionEvent.from_dict(dict(item))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataValidationError(
            f"decision event #{index} is not a valid DecisionEvent: {exc!r}"
        ) from exc


def event_rows(
    events: Sequence[DecisionEvent | Mapping[str, Any]],
    *,
    release_id: int | None,
    shadow: bool,
    recorded_at: datetime,
) -> list[dict[str, Any]]:
    """Validated insert rows, one per distinct event id (first occurrence wins)."""
    rows: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(events):
        event = as_event(item, index)
        payload = event.to_dict()
        canonical_json(payload, f"decision event #{index} ({event.symbol})")
        event_id = decision_event_id(event, shadow=shadow)
        rows.setdefault(
            event_id,
            {
                "event_id": event_id,
                "timestamp": event.timestamp,
                "symbol": event.symbol,
                "regime": event.regime.value,
                "action": event.action.value,
                "consensus_score": event.consensus_score,
                "expected_edge_bps": event.expected_edge_bps,
                "costs_bps": event.costs_bps,
                "net_edge_bps": event.net_edge_bps,
                "risk_preset": event.risk_preset,
                "release_id": release_id,
                "shadow": shadow,
                "model_version": model_version_of(event),
                "payload": payload,
                "recorded_at": recorded_at,
            },
        )
    return list(rows.values())


def insert_events(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose event id is new; returns how many were new."""
    if not rows:
        return 0
    table = DecisionEventRow.__table__
    statement = (
        dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(table.c.id)
    )
    return len(session.connection().execute(statement, rows).all())


def query_events(
    session: Session,
    *,
    symbol: str | None,
    since: datetime | None,
    until: datetime | None,
    action: str | None,
    shadow: bool | None,
    release_id: int | None,
    limit: int | None,
    model_version: str | None = None,
) -> list[dict[str, Any]]:
    """Events ordered by bar time; ``since`` inclusive, ``until`` exclusive."""
    if action is not None and action not in {a.value for a in Action}:
        raise DataValidationError(f"action {action!r}; allowed: {[a.value for a in Action]}")
    if limit is not None and limit < 1:
        raise DataValidationError(f"limit {limit!r} must be >= 1")
    query = select(DecisionEventRow)
    filters: list[Any] = []
    if symbol is not None:
        filters.append(DecisionEventRow.symbol == symbol)
    if since is not None:
        filters.append(DecisionEventRow.timestamp >= require_utc(since, "since"))
    if until is not None:
        filters.append(DecisionEventRow.timestamp < require_utc(until, "until"))
    if action is not None:
        filters.append(DecisionEventRow.action == action)
    if shadow is not None:
        filters.append(DecisionEventRow.shadow == shadow)
    if release_id is not None:
        filters.append(DecisionEventRow.release_id == release_id)
    if model_version is not None:
        filters.append(DecisionEventRow.model_version == model_version)
    query = query.where(*filters).order_by(DecisionEventRow.timestamp, DecisionEventRow.id)
    if limit is not None:
        query = query.limit(limit)
    return [
        {
            **row.payload,
            "event_id": row.event_id,
            "release_id": row.release_id,
            "shadow": row.shadow,
        }
        for row in session.execute(query).scalars()
    ]


def insert_trade_outcome(
    session: Session,
    event_id: str,
    *,
    fill_price: float,
    pnl_usd: float,
    fees_usd: float,
    closed_at: datetime,
    details: Mapping[str, Any] | None,
) -> bool:
    """Record the outcome of a decision once; False when it was already recorded."""
    finite_floats({"fill_price": fill_price, "pnl_usd": pnl_usd, "fees_usd": fees_usd}, "outcome")
    if fill_price <= 0.0:
        raise DataValidationError(f"fill_price {fill_price!r} must be > 0")
    require_utc(closed_at, "closed_at")
    if details is not None:
        canonical_json(dict(details), "details")
    known = select(DecisionEventRow.id).filter_by(event_id=event_id)
    if session.execute(known).first() is None:
        raise BrainLibraryError(f"no decision event with id {event_id!r}; record the event first")
    statement = (
        dialect_insert(session, TradeOutcomeRow.__table__)
        .values(
            event_id=event_id,
            fill_price=fill_price,
            pnl_usd=pnl_usd,
            fees_usd=fees_usd,
            closed_at=closed_at,
            details=None if details is None else dict(details),
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(TradeOutcomeRow.__table__.c.id)
    )
    return session.connection().execute(statement).first() is not None


def query_outcomes(
    session: Session,
    *,
    symbol: str | None,
    since: datetime | None,
    until: datetime | None = None,
    model_version: str | None = None,
) -> list[dict[str, Any]]:
    """Trade outcomes joined to their decision (symbol, bar time, regime, model version, shadow
    flag), oldest close first; ``since`` inclusive, ``until`` exclusive (close times)."""
    query = select(
        TradeOutcomeRow,
        DecisionEventRow.symbol,
        DecisionEventRow.timestamp,
        DecisionEventRow.regime,
        DecisionEventRow.model_version,
        DecisionEventRow.shadow,
    ).join(DecisionEventRow, DecisionEventRow.event_id == TradeOutcomeRow.event_id)
    if symbol is not None:
        query = query.where(DecisionEventRow.symbol == symbol)
    if since is not None:
        query = query.where(TradeOutcomeRow.closed_at >= require_utc(since, "since"))
    if until is not None:
        query = query.where(TradeOutcomeRow.closed_at < require_utc(until, "until"))
    if model_version is not None:
        query = query.where(DecisionEventRow.model_version == model_version)
    query = query.order_by(TradeOutcomeRow.closed_at, TradeOutcomeRow.id)
    return [
        {
            "event_id": outcome.event_id,
            "symbol": sym,
            "decision_timestamp": ts,
            "regime": regime,
            "model_version": version,
            "shadow": shadow,
            "fill_price": outcome.fill_price,
            "pnl_usd": outcome.pnl_usd,
            "fees_usd": outcome.fees_usd,
            "closed_at": outcome.closed_at,
            "details": outcome.details,
        }
        for outcome, sym, ts, regime, version, shadow in session.execute(query).all()
    ]
