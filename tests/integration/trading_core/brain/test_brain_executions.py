"""Order executions on SQLite and PostgreSQL: upsert by client order id, the merge rules (fills
never shrink, final statuses stay final), realized vs expected cost, queries and the CLI."""

import itertools
import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect
from typer.testing import CliRunner

from tests.integration.brain_fixtures import (
    T0,
    FakeClock,
    brain,
    brain_dsn,
    make_event,
    pg_schema_dsn,
    sqlite_template,
)
from trading_core.brain import FINAL_EXECUTION_STATUSES, BrainLibrary, decision_event_id
from trading_core.brain.executions_store import execution_values, merge_report, with_realized
from trading_core.config import EngineConfig
from trading_core.costs.kernel import fill_price_and_fee
from trading_core.errors import BrainLibraryError

# Fixtures are found as attributes of the test module: importing them registers them.
FIXTURES = (brain, brain_dsn, pg_schema_dsn, sqlite_template)

REFERENCE = 100.0
_ids = itertools.count()


def _stored_event(library: BrainLibrary, hour: int = 0, symbol: str = "BTC/USDT") -> str:
    event = make_event(symbol, hour, "buy")
    library.append_decision_events([event], release_id=None)
    return decision_event_id(event, shadow=False)


def _report(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of one report: a 2-unit market buy at a 100 reference, unfilled."""
    report: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "side": "buy",
        "order_type": "market",
        "status": "pending",
        "requested_qty": 2.0,
        "reference_price": REFERENCE,
        "expected_cost_bps": 6.0,
    }
    return {**report, **overrides}


def _one(library: BrainLibrary, client_order_id: str) -> dict[str, Any]:
    (row,) = [r for r in library.order_executions() if r["client_order_id"] == client_order_id]
    return row


# --- schema --------------------------------------------------------------------------------


def test_migration_creates_order_executions_with_indexes(brain: BrainLibrary) -> None:
    inspector = inspect(brain.engine)
    assert "order_executions" in inspector.get_table_names()
    indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("order_executions")}
    assert indexes["ix_order_executions_symbol_updated_at"] == ["symbol", "updated_at"]
    assert indexes["ix_order_executions_event_id"] == ["event_id"]
    (fk,) = inspector.get_foreign_keys("order_executions")
    assert fk["referred_table"] == "decision_events" and fk["referred_columns"] == ["event_id"]


# --- recording -----------------------------------------------------------------------------


def test_paper_fill_records_realized_cost_equal_to_model(brain: BrainLibrary) -> None:
    event_id = _stored_event(brain)
    price, fee = fill_price_and_fee(2.0, REFERENCE, 2.0, 4.0)
    changed = brain.record_order_execution(
        "c-1",
        **_report(status="filled", filled_qty=2.0, avg_fill_price=price, fee_usd=fee),
        event_id=event_id,
        details={"venue": "paper"},
    )
    assert changed is True
    row = _one(brain, "c-1")
    assert row["event_id"] == event_id and row["status"] == "filled" and row["reason_code"] == ""
    assert row["realized_price_impact_bps"] == pytest.approx(2.0, abs=1e-9)
    assert row["realized_fee_bps"] == pytest.approx(4.0, abs=1e-9)
    assert row["realized_cost_bps"] == pytest.approx(6.0, abs=1e-9)
    assert row["cost_error_bps"] == pytest.approx(0.0, abs=1e-9)
    assert row["details"] == {"venue": "paper"}
    assert row["created_at"] == row["updated_at"] and row["updated_at"].tzinfo is not None


def test_repeated_report_changes_nothing(brain: BrainLibrary) -> None:
    event_id = _stored_event(brain)
    report = _report(
        status="filled",
        filled_qty=2.0,
        avg_fill_price=100.1,
        fee_usd=0.1,
        updated_at=T0,
        details={"a": 1},
    )
    assert brain.record_order_execution("c-1", event_id=event_id, **report) is True
    before = brain.order_executions()
    assert brain.record_order_execution("c-1", event_id=event_id, **report) is False
    assert brain.record_order_execution("c-1", **report) is False  # no event id: keeps it
    assert brain.order_executions() == before


def test_unknown_event_raises_then_succeeds_after_event_stored(brain: BrainLibrary) -> None:
    event = make_event("BTC/USDT", 5, "buy")
    event_id = decision_event_id(event, shadow=False)
    with pytest.raises(BrainLibraryError, match="record the event first") as info:
        brain.record_order_execution("c-1", event_id=event_id, **_report())
    assert not info.value.retryable
    assert brain.order_executions() == []
    brain.append_decision_events([event], release_id=None)
    assert brain.record_order_execution("c-1", event_id=event_id, **_report()) is True


def test_flatten_order_without_event_is_recorded(brain: BrainLibrary) -> None:
    changed = brain.record_order_execution(
        "flatten-1",
        **_report(side="sell", status="filled", filled_qty=2.0, avg_fill_price=99.9, fee_usd=0.0),
        reason_code="kill_switch",
    )
    assert changed
    row = _one(brain, "flatten-1")
    assert row["event_id"] is None and row["reason_code"] == "kill_switch"
    assert row["realized_price_impact_bps"] == pytest.approx(10.0)


def test_rejection_is_recorded_with_reason_and_no_realized_cost(brain: BrainLibrary) -> None:
    event_id = _stored_event(brain)
    brain.record_order_execution(
        "c-1", event_id=event_id, **_report(status="rejected"), reason_code="risk_max_exposure"
    )
    (row,) = brain.order_executions(status="rejected")
    assert row["reason_code"] == "risk_max_exposure" and row["filled_qty"] == 0.0
    assert row["realized_cost_bps"] is None and row["cost_error_bps"] is None
    assert row["avg_fill_price"] is None


def test_partial_fills_accumulate_and_never_shrink(brain: BrainLibrary) -> None:
    event_id = _stored_event(brain)
    brain.record_order_execution("c-1", event_id=event_id, **_report(updated_at=T0))
    partial = _report(
        filled_qty=0.5, avg_fill_price=100.02, fee_usd=0.02, updated_at=T0 + timedelta(seconds=2)
    )
    assert brain.record_order_execution("c-1", **partial)
    row = _one(brain, "c-1")
    assert row["status"] == "pending" and row["filled_qty"] == 0.5
    assert row["realized_cost_bps"] is not None
    stale = _report(
        filled_qty=0.2, avg_fill_price=100.01, fee_usd=0.01, updated_at=T0 + timedelta(seconds=1)
    )
    assert brain.record_order_execution("c-1", **stale) is False
    assert _one(brain, "c-1")["filled_qty"] == 0.5
    full = _report(
        status="filled",
        filled_qty=2.0,
        avg_fill_price=100.05,
        fee_usd=0.08,
        updated_at=T0 + timedelta(seconds=3),
    )
    assert brain.record_order_execution("c-1", **full)
    row = _one(brain, "c-1")
    assert (row["status"], row["filled_qty"], row["avg_fill_price"]) == ("filled", 2.0, 100.05)
    assert row["updated_at"] == T0 + timedelta(seconds=3)
    assert row["created_at"] == T0


def test_final_status_never_returns_to_pending(brain: BrainLibrary) -> None:
    canceled = _report(
        status="canceled",
        filled_qty=0.5,
        avg_fill_price=100.0,
        updated_at=T0 + timedelta(seconds=5),
    )
    brain.record_order_execution("c-1", **canceled, reason_code="user_cancel")
    late_pending = _report(
        filled_qty=0.5, avg_fill_price=100.0, updated_at=T0, details={"late": True}
    )
    assert brain.record_order_execution("c-1", **late_pending)  # details merged
    row = _one(brain, "c-1")
    assert row["status"] == "canceled" and row["reason_code"] == "user_cancel"
    assert row["updated_at"] == T0 + timedelta(seconds=5) and row["details"] == {"late": True}


def test_conflicting_identity_raises_and_keeps_row(brain: BrainLibrary) -> None:
    brain.record_order_execution("c-1", **_report())
    with pytest.raises(BrainLibraryError, match="symbol"):
        brain.record_order_execution("c-1", **_report(symbol="ETH/USDT"))
    with pytest.raises(BrainLibraryError, match="requested_qty"):
        brain.record_order_execution("c-1", **_report(requested_qty=3.0))
    assert _one(brain, "c-1")["symbol"] == "BTC/USDT"


def test_other_event_for_same_order_raises(brain: BrainLibrary) -> None:
    first, second = _stored_event(brain, 0), _stored_event(brain, 1)
    brain.record_order_execution("c-1", event_id=first, **_report())
    with pytest.raises(BrainLibraryError, match="belongs to event"):
        brain.record_order_execution("c-1", event_id=second, **_report())


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"side": "long"}, "side 'long'"),
        ({"status": "open"}, "status 'open'"),
        ({"requested_qty": math.nan}, "requested_qty"),
        ({"filled_qty": -1.0}, "filled_qty -1.0"),
        ({"filled_qty": 1.0}, "needs avg_fill_price"),
        ({"filled_qty": 1.0, "avg_fill_price": 0.0}, "avg_fill_price 0.0"),
        ({"status": "filled"}, "needs filled_qty > 0"),
        ({"status": "rejected"}, "reason code"),
        ({"reference_price": 0.0}, "reference_price 0.0"),
        ({"expected_cost_bps": math.inf}, "expected_cost_bps"),
        ({"reason_code": "x" * 41}, "longer than 40"),
        ({"symbol": " BTC/USDT"}, "symbol"),
        ({"updated_at": datetime(2025, 1, 1)}, "timezone-aware"),  # noqa: DTZ001
        ({"details": {"x": math.nan}}, "NaN"),
    ],
)
def test_invalid_report_raises_value_error(
    brain: BrainLibrary, overrides: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        brain.record_order_execution("c-1", **_report(**overrides))
    assert brain.order_executions() == []


def test_query_filters_by_symbol_status_time_and_event(brain: BrainLibrary) -> None:
    event_id = _stored_event(brain)
    brain.record_order_execution("b1", event_id=event_id, **_report(updated_at=T0))
    brain.record_order_execution(
        "e1", **_report(symbol="ETH/USDT", status="expired", updated_at=T0 + timedelta(hours=1))
    )
    brain.record_order_execution(
        "b2", **_report(status="canceled", updated_at=T0 + timedelta(hours=2))
    )
    ids = [r["client_order_id"] for r in brain.order_executions()]
    assert ids == ["b1", "e1", "b2"]
    assert [r["client_order_id"] for r in brain.order_executions(symbol="BTC/USDT")] == ["b1", "b2"]
    assert [r["client_order_id"] for r in brain.order_executions(status="expired")] == ["e1"]
    window = brain.order_executions(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=2))
    assert [r["client_order_id"] for r in window] == ["e1"]
    assert [r["client_order_id"] for r in brain.order_executions(event_id=event_id)] == ["b1"]
    with pytest.raises(ValueError, match="status 'open'"):
        brain.order_executions(status="open")


# --- merge rules as properties ---------------------------------------------------------------

_STATUSES = st.sampled_from(["pending", "filled", "canceled", "expired"])
_REPORTS = st.lists(
    st.tuples(_STATUSES, st.integers(0, 4), st.integers(0, 10)), min_size=1, max_size=6
)


def _reports(raw: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    out = []
    for status, quarters, seconds in raw:
        filled = 0.5 * quarters if status != "filled" else 0.5 * max(quarters, 1)
        out.append(
            _report(
                status=status,
                filled_qty=filled,
                avg_fill_price=None if filled == 0.0 else 100.0 + filled,
                fee_usd=0.01 * filled,
                updated_at=T0 + timedelta(seconds=seconds),
            )
        )
    return out


def _values(client_order_id: str, report: dict[str, Any]) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "event_id": None,
        "filled_qty": 0.0,
        "avg_fill_price": None,
        "fee_usd": 0.0,
        "reason_code": "",
        "details": None,
    }
    return execution_values(client_order_id=client_order_id, **{**defaults, **report})


@given(raw=_REPORTS)
def test_merge_keeps_max_fill_newest_time_and_final_status(raw: list[tuple[str, int, int]]) -> None:
    reports = [_values("c", r) for r in _reports(raw)]
    row = with_realized(reports[0])
    for report in reports[1:]:
        again = merge_report(row, report)
        assert merge_report(again, report) == again  # idempotent
        assert again["filled_qty"] >= row["filled_qty"]
        if row["status"] in FINAL_EXECUTION_STATUSES:
            assert again["status"] in FINAL_EXECUTION_STATUSES
        row = again
    assert row["filled_qty"] == max(r["filled_qty"] for r in reports)
    assert row["updated_at"] == max(r["updated_at"] for r in reports)
    assert (row["realized_cost_bps"] is None) == (row["filled_qty"] == 0.0)


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=_REPORTS)
def test_stored_row_matches_pure_merge_in_any_order(
    brain: BrainLibrary, raw: list[tuple[str, int, int]]
) -> None:
    client_order_id = f"h-{next(_ids)}"
    reports = _reports(raw)
    expected = with_realized(_values(client_order_id, reports[0]))
    for report in reports:
        brain.record_order_execution(client_order_id, **report)
        expected = merge_report(expected, _values(client_order_id, report))
    stored = _one(brain, client_order_id)
    for name in (
        "status",
        "filled_qty",
        "avg_fill_price",
        "fee_usd",
        "updated_at",
        "realized_cost_bps",
    ):
        assert stored[name] == expected[name], name


# --- concurrency -----------------------------------------------------------------------------


def test_concurrent_reports_of_one_order_keep_largest_fill(brain: BrainLibrary) -> None:
    writers = 6
    barrier = threading.Barrier(writers)

    def write(i: int) -> bool:
        barrier.wait(timeout=30)
        filled = 0.25 * (i + 1)
        return brain.record_order_execution(
            "race",
            **_report(
                filled_qty=filled,
                avg_fill_price=100.0,
                fee_usd=0.01,
                updated_at=T0 + timedelta(seconds=i),
            ),
        )

    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(pool.map(write, range(writers)))
    (row,) = brain.order_executions()
    assert row["filled_qty"] == 0.25 * writers
    assert row["updated_at"] == T0 + timedelta(seconds=writers - 1)


# --- CLI -----------------------------------------------------------------------------------


def test_cli_executions_lists_table_and_json(tmp_path: Path) -> None:
    # imported here: the CLI package loads every plugin, which the library tests do not need
    from coin_engine.cli.events_cmd import events_app

    section = {
        "brain_library_dsn": f"sqlite:///{tmp_path / 'brain.db'}",
        "storage_path": str(tmp_path / "artifacts"),
    }
    config = EngineConfig.model_validate({"training": {"model_versioning": section}})
    library = BrainLibrary(section["brain_library_dsn"], tmp_path / "artifacts", clock=FakeClock())
    library.migrate()
    library.record_order_execution(
        "c-fill", **_report(status="filled", filled_qty=2.0, avg_fill_price=100.05, fee_usd=0.08)
    )
    library.record_order_execution(
        "c-rej", **_report(symbol="ETH/USDT", status="rejected"), reason_code="min_notional"
    )
    library.close()
    env = {"COLUMNS": "250", "NO_COLOR": "1"}

    def run(*args: str) -> str:
        result = CliRunner().invoke(events_app, list(args), obj={"config": config}, env=env)
        assert result.exit_code == 0, result.output
        return result.output

    table = run("executions")
    assert "2 order execution(s)" in table and "c-fill" in table and "min_notional" in table
    only_rejected = run("executions", "--status", "rejected", "--symbol", "ETH/USDT")
    assert "c-rej" in only_rejected and "c-fill" not in only_rejected
    lines = [json.loads(line) for line in run("executions", "--json").splitlines()]
    assert [line["client_order_id"] for line in lines] == ["c-fill", "c-rej"]
    assert lines[0]["cost_error_bps"] == pytest.approx(lines[0]["realized_cost_bps"] - 6.0)
    assert run("executions", "--since", "2100-01-01").count("c-") == 0
    bad = CliRunner().invoke(
        events_app, ["executions", "--status", "open"], obj={"config": config}, env=env
    )
    assert bad.exit_code != 0 and "open" in bad.output
