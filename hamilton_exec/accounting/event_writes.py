"""How the event sink's records are written to the Brain Library, and which failures are the
database's (spool everything) rather than a record's (keep that record, write the others).

Every write is idempotent: events are keyed by event id (a second insert is skipped), outcomes
by their event id, shadow periods by challenger and period (an upsert), order executions by
client order id (a merge that never goes back). Writing a record twice stores it once.
"""

from datetime import datetime
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from trading_core.brain import BrainLibrary
from trading_core.errors import BrainLibraryError, RetryableError
from trading_core.observability.logging import get_logger
from trading_core.shadow.periods import ShadowPeriod

Records = list[dict[str, Any]]


def _log() -> Any:
    return get_logger(__name__)


def is_data_refusal(exc: BaseException) -> bool:
    """The library refused a record for what it holds (keep it, write the others), as opposed
    to a database that failed to write (spool everything).

    A refusal: a :class:`BrainLibraryError` or ``ValueError`` raised by the library's checks
    (no database error behind it), or the database's own verdict on the row (a constraint or
    a value it rejects: ``IntegrityError``, ``DataError``). A failure: anything retryable
    (unreachable, locked, a lost race), any other database error (read-only transaction,
    permission denied, disk full, missing schema), an OS error, anything else."""
    if isinstance(exc, RetryableError):
        return False
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, IntegrityError | DataError):
            return True
        if isinstance(seen, DBAPIError | OSError | RetryableError):
            return False
        seen = seen.__cause__ or seen.__context__
    return isinstance(exc, BrainLibraryError | ValueError)


def write_records(library: BrainLibrary, records: Records) -> tuple[int, int, Records]:
    """Write ``records`` (events first: outcomes and executions name them); returns (new
    events, new outcomes, records refused for their content). A database failure raises."""
    groups: dict[tuple[int | None, bool], Records] = {}
    for record in records:
        if record["kind"] == "event":
            key = (record["release_id"], bool(record["shadow"]))
            groups.setdefault(key, []).append(record)
    written, kept = 0, list[dict[str, Any]]()
    for (release_id, shadow), group in groups.items():
        try:
            written += library.append_decision_events(
                [r["event"] for r in group], release_id=release_id, shadow=shadow
            )
        except Exception as exc:
            if not is_data_refusal(exc):
                raise
            one, refused = _events_one_by_one(library, group, release_id, shadow)
            written, kept = written + one, kept + refused
    outcomes = 0
    for record in records:
        kind = record["kind"]
        if kind == "outcome":
            stored = _write_outcome(library, record)
            outcomes += int(bool(stored))
            kept.extend([record] if stored is None else [])
        elif kind == "shadow_period":
            kept.extend(_write_period(library, record))
        elif kind == "execution":
            kept.extend(_write_execution(library, record))
    return written, outcomes, kept


def _events_one_by_one(
    library: BrainLibrary, group: Records, release_id: int | None, shadow: bool
) -> tuple[int, Records]:
    """A batch refused for its content: each event on its own; keep only the refused ones."""
    written, kept = 0, []
    for record in group:
        try:
            written += library.append_decision_events(
                [record["event"]], release_id=release_id, shadow=shadow
            )
        except Exception as exc:
            if not is_data_refusal(exc):
                raise
            _log().warning("event_deferred", release_id=release_id, error=str(exc))
            kept.append(record)
    return written, kept


def _write_outcome(library: BrainLibrary, record: dict[str, Any]) -> bool | None:
    """True: stored; False: stored before; None: refused for now (its opening event is not
    stored yet), kept in the spool with a warning."""
    data = record["outcome"]
    try:
        return library.record_trade_outcome(
            data["event_id"],
            fill_price=data["fill_price"],
            pnl_usd=data["pnl_usd"],
            closed_at=datetime.fromisoformat(data["closed_at"]),
            fees_usd=data["fees_usd"],
            details=data.get("details"),
        )
    except Exception as exc:
        if not is_data_refusal(exc):
            raise
        _log().warning("outcome_deferred", event_id=data["event_id"], error=str(exc))
        return None


def _write_period(library: BrainLibrary, record: dict[str, Any]) -> Records:
    """A period the library refuses (e.g. its challenger is unknown there) is kept."""
    period = ShadowPeriod.from_dict(record["period"])
    try:
        library.record_shadow_result(**period.record_arguments())
    except Exception as exc:
        if not is_data_refusal(exc):
            raise
        _log().warning("shadow_period_deferred", challenger=period.challenger, error=str(exc))
        return [record]
    return []


def _write_execution(library: BrainLibrary, record: dict[str, Any]) -> Records:
    """An order's final report (``Execution.to_dict()``); one naming a decision not stored yet
    is kept, like a deferred outcome. The realized costs are recomputed by the library."""
    data = record["execution"]
    detail = data.get("detail") or ""
    try:
        library.record_order_execution(
            data["client_order_id"],
            symbol=data["symbol"],
            side=data["side"],
            order_type=data["order_type"],
            status=data["status"],
            requested_qty=data["requested_qty"],
            reference_price=data["reference_price"],
            expected_cost_bps=data["expected_cost_bps"],
            event_id=data.get("event_id") or None,
            filled_qty=data["filled_qty"],
            avg_fill_price=data.get("avg_fill_price"),
            fee_usd=data["fee_usd"],
            reason_code=data.get("reason_code") or "",
            updated_at=datetime.fromisoformat(data["updated_at"]),
            details={"detail": detail} if detail else None,
        )
    except Exception as exc:
        if not is_data_refusal(exc):
            raise
        _log().warning(
            "execution_deferred", client_order_id=data["client_order_id"], error=str(exc)
        )
        return [record]
    return []
