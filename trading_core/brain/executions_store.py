"""Order executions in the Brain Library database: one row per client order id.

Every live or paper order - or its refusal - is recorded with its status, a reason code, what
filled at what price and fee, and what that cost in bps against the decision's reference
price next to the cost the model expected (:mod:`trading_core.costs.realized`).

Reports of one order arrive repeatedly and out of order (a spool replays after a crash, the
exchange reports partial fills, a reconciliation re-reads the order), so a write is an upsert
that merges a report into the stored row:

* identity (symbol, side, order type, requested qty, reference price, expected cost) never
  changes; a report that disagrees is refused (two orders sharing a client order id);
* ``filled_qty`` never decreases: the fill fields (qty, average price, fee) come from the report
  with the largest filled qty (on a tie, the newest report);
* a final status (filled, canceled, rejected, expired) never goes back to 'pending';
* ``updated_at`` is the newest report's time; ``details`` are merged, the newest report's keys
  winning;
* repeating a write changes nothing.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trading_core.brain.db import dialect_insert
from trading_core.brain.records import canonical_json, finite_floats, require_utc
from trading_core.brain.schema import (
    EXECUTION_STATUSES,
    FINAL_EXECUTION_STATUSES,
    DecisionEventRow,
    OrderExecutionRow,
)
from trading_core.errors import BrainLibraryError, DataValidationError

SIDES: Final[tuple[str, ...]] = ("buy", "sell")
IDENTITY_FIELDS: Final[tuple[str, ...]] = (
    "symbol",
    "side",
    "order_type",
    "requested_qty",
    "reference_price",
    "expected_cost_bps",
)
_LENGTHS: Final = {
    "client_order_id": 64,
    "event_id": 64,
    "symbol": 32,
    "order_type": 16,
    "reason_code": 40,
}


def _check_text(name: str, value: str | None, *, empty_ok: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, str) or value != value.strip() or (not value and not empty_ok):
        raise DataValidationError(
            f"{name} {value!r} must be a non-blank string without outer spaces"
        )
    if len(value) > _LENGTHS[name]:
        raise DataValidationError(f"{name} {value!r} is longer than {_LENGTHS[name]} characters")


def execution_values(
    *,
    client_order_id: str,
    event_id: str | None,
    symbol: str,
    side: str,
    order_type: str,
    status: str,
    reason_code: str,
    requested_qty: float,
    filled_qty: float,
    avg_fill_price: float | None,
    fee_usd: float,
    reference_price: float,
    expected_cost_bps: float,
    updated_at: datetime,
    details: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One validated report as column values (without the realized costs)."""
    for name, text in (
        ("client_order_id", client_order_id),
        ("event_id", event_id),
        ("symbol", symbol),
        ("order_type", order_type),
    ):
        _check_text(name, text)
    _check_text("reason_code", reason_code, empty_ok=True)
    if side not in SIDES:
        raise DataValidationError(f"side {side!r}; allowed: {list(SIDES)}")
    if status not in EXECUTION_STATUSES:
        raise DataValidationError(f"status {status!r}; allowed: {list(EXECUTION_STATUSES)}")
    numbers = finite_floats(
        {
            "requested_qty": requested_qty,
            "filled_qty": filled_qty,
            "fee_usd": fee_usd,
            "reference_price": reference_price,
            "expected_cost_bps": expected_cost_bps,
        },
        f"order {client_order_id!r}",
    )
    if numbers["requested_qty"] < 0.0 or numbers["filled_qty"] < 0.0:
        raise DataValidationError(
            f"requested_qty {requested_qty!r} and filled_qty {filled_qty!r} must be >= 0"
        )
    if numbers["reference_price"] <= 0.0:
        raise DataValidationError(f"reference_price {reference_price!r} must be > 0")
    price = _fill_price(numbers["filled_qty"], avg_fill_price)
    if status == "filled" and numbers["filled_qty"] == 0.0:
        raise DataValidationError(f"status 'filled' needs filled_qty > 0; got {filled_qty!r}")
    if status == "rejected" and (numbers["filled_qty"] > 0.0 or not reason_code):
        raise DataValidationError(
            f"status 'rejected' needs filled_qty 0 (got {filled_qty!r}) and a reason code "
            f"(got {reason_code!r})"
        )
    return {
        "client_order_id": client_order_id,
        "event_id": event_id,
        "symbol": symbol,
        "side": side,
        "order_type": order_type,
        "status": status,
        "reason_code": reason_code,
        **numbers,
        "avg_fill_price": price,
        "updated_at": require_utc(updated_at, "updated_at"),
        "details": _details(details),
    }


def _fill_price(filled_qty: float, avg_fill_price: float | None) -> float | None:
    if filled_qty == 0.0:
        return None if avg_fill_price is None else _positive_price(avg_fill_price)
    if avg_fill_price is None:
        raise DataValidationError(f"filled_qty {filled_qty!r} > 0 needs avg_fill_price")
    return _positive_price(avg_fill_price)


def _positive_price(value: float) -> float:
    price = finite_floats({"avg_fill_price": value}, "order")["avg_fill_price"]
    if price <= 0.0:
        raise DataValidationError(f"avg_fill_price {value!r} must be > 0")
    return price


def _details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {} if details is None else {str(k): v for k, v in details.items()}
    canonical_json(out, "details")
    return out


def with_realized(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` plus the realized costs (None until something filled)."""
    # imported here: trading_core.costs loads the numba cost kernels (~1 s), which the Brain
    # Library's other readers (`coin-engine brain ls`) never need
    from trading_core.costs.realized import realized_cost_bps

    realized: dict[str, float | None] = dict.fromkeys(
        ("realized_cost_bps", "realized_fee_bps", "realized_price_impact_bps")
    )
    if values["filled_qty"] > 0.0:
        cost = realized_cost_bps(
            side_sign=1.0 if values["side"] == "buy" else -1.0,
            reference_price=values["reference_price"],
            avg_fill_price=values["avg_fill_price"],
            filled_qty=values["filled_qty"],
            fee_usd=values["fee_usd"],
        )
        realized = {
            "realized_cost_bps": cost.total_bps,
            "realized_fee_bps": cost.fee_bps,
            "realized_price_impact_bps": cost.price_impact_bps,
        }
    return {**values, **realized}


def merge_report(stored: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, Any]:
    """The stored row updated by a later report of the same order (module docstring rules)."""
    cid = stored["client_order_id"]
    for name in IDENTITY_FIELDS:
        if stored[name] != report[name]:
            raise BrainLibraryError(
                f"order {cid!r} was recorded with {name}={stored[name]!r}; a report says "
                f"{report[name]!r} (two orders share one client order id?)"
            )
    event_id = stored["event_id"] if report["event_id"] is None else report["event_id"]
    if stored["event_id"] not in (None, event_id):
        raise BrainLibraryError(
            f"order {cid!r} belongs to event {stored['event_id']!r}; a report says {event_id!r}"
        )
    merged = dict(stored)
    merged["event_id"] = event_id
    if not (stored["status"] in FINAL_EXECUTION_STATUSES and report["status"] == "pending"):
        same = report["status"] == stored["status"]
        merged["status"] = report["status"]
        merged["reason_code"] = report["reason_code"] or (stored["reason_code"] if same else "")
    if report["filled_qty"] >= stored["filled_qty"]:
        for name in ("filled_qty", "avg_fill_price", "fee_usd"):
            merged[name] = report[name]
    merged["updated_at"] = max(stored["updated_at"], report["updated_at"])
    merged["details"] = {**stored["details"], **report["details"]}
    return with_realized(merged)


def _stored(session: Session, client_order_id: str) -> dict[str, Any] | None:
    table = OrderExecutionRow.__table__
    query = select(table).where(table.c.client_order_id == client_order_id).with_for_update()
    row = session.execute(query).mappings().first()
    return None if row is None else dict(row)


def upsert_execution(session: Session, report: dict[str, Any]) -> bool:
    """Insert or merge one report (from :func:`execution_values`); True if anything changed.

    A report naming a decision event that is not stored yet raises BrainLibraryError (the
    caller keeps it and retries once the event is flushed)."""
    event_id = report["event_id"]
    if event_id is not None:
        known = select(DecisionEventRow.id).filter_by(event_id=event_id)
        if session.execute(known).first() is None:
            raise BrainLibraryError(
                f"no decision event with id {event_id!r}; record the event first"
            )
    table = OrderExecutionRow.__table__
    stored = _stored(session, report["client_order_id"])
    if stored is None:
        row = {**with_realized(report), "created_at": report["updated_at"]}
        statement = (
            dialect_insert(session, table)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["client_order_id"])
            .returning(table.c.id)
        )
        if session.connection().execute(statement).first() is not None:
            return True
        stored = _stored(session, report["client_order_id"])  # a concurrent writer won
        assert stored is not None  # noqa: S101 - the conflicting row exists
    merged = merge_report(stored, report)
    changes = {k: v for k, v in merged.items() if k != "id" and stored[k] != v}
    if not changes:
        return False
    changed = update(OrderExecutionRow).where(OrderExecutionRow.id == stored["id"])
    session.connection().execute(changed.values(changes))
    return True


def query_executions(
    session: Session,
    *,
    symbol: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    event_id: str | None = None,
) -> list[dict[str, Any]]:
    """Executions by last update, oldest first; ``since`` inclusive, ``until`` exclusive. Each
    carries ``cost_error_bps`` = realized - expected (None until something filled)."""
    from trading_core.costs.realized import RealizedCost, cost_error_bps  # see with_realized

    if status is not None and status not in EXECUTION_STATUSES:
        raise DataValidationError(f"status {status!r}; allowed: {list(EXECUTION_STATUSES)}")
    table = OrderExecutionRow.__table__
    query = select(table)
    if symbol is not None:
        query = query.where(table.c.symbol == symbol)
    if status is not None:
        query = query.where(table.c.status == status)
    if since is not None:
        query = query.where(table.c.updated_at >= require_utc(since, "since"))
    if until is not None:
        query = query.where(table.c.updated_at < require_utc(until, "until"))
    if event_id is not None:
        query = query.where(table.c.event_id == event_id)
    query = query.order_by(table.c.updated_at, table.c.id)
    rows = []
    for row in session.execute(query).mappings():
        item = {k: v for k, v in row.items() if k != "id"}
        item["cost_error_bps"] = (
            None
            if item["realized_cost_bps"] is None
            else cost_error_bps(
                item["expected_cost_bps"],
                RealizedCost(
                    total_bps=item["realized_cost_bps"],
                    fee_bps=item["realized_fee_bps"],
                    price_impact_bps=item["realized_price_impact_bps"],
                ),
            )
        )
        rows.append(item)
    return rows
