"""The engine's side of its broker, with the paper broker: the kill switch from the config and by
call (cancel, reduce-only flatten, HALTED, resume), the reconcile that makes the exchange the
truth (drift metered, a fresh start's day equity), and the order book's executions."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hamilton_exec.accounting.event_store import EventSink
from hamilton_exec.execution.brokers import ExchangeSnapshot, OrderReport, OrderRequest, PaperBroker
from hamilton_exec.execution.orders_flow import OrderBook, reconcile_state
from hamilton_exec.settings import HamiltonSettings
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from hamilton_exec.tick.hamilton_engine import HamiltonEngine
from trading_core.config.models import EngineConfig
from trading_core.risk import Fill, Position, RiskState

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
SYMBOLS = ("BTC/USDT", "ETH/USDT")


def _engine(tmp_path: Path, **overrides: object) -> HamiltonEngine:
    config = EngineConfig.model_validate(overrides)
    settings = HamiltonSettings.from_config(
        config, state_dir=tmp_path, metrics_port=None, health_port=None
    )
    return HamiltonEngine(
        config,
        settings,
        SYMBOLS,
        sink=EventSink(None, tmp_path / "spool.jsonl"),
        metrics=HamiltonMetrics(venue="binance"),
        now=NOW,
    )


def _value(engine: HamiltonEngine, name: str, **labels: str) -> float:
    value = engine.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _long(engine: HamiltonEngine, symbol: str, qty: float, price: float) -> None:
    engine.state = engine.state.with_position(symbol, Position(qty, price, price, 3))


def test_config_kill_switch_starts_halted_with_its_reason(tmp_path: Path) -> None:
    engine = _engine(tmp_path, risk={"kill_switch": True})
    assert engine.state.kill_switch and engine.kill_reason == "config: risk.kill_switch"
    restored = _engine(tmp_path, risk={"kill_switch": True})
    restored.restore(_engine(tmp_path).snapshot())  # a saved state without it: config wins
    assert restored.state.kill_switch


def test_kill_cancels_flattens_reduce_only_and_resume_releases(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _long(engine, "BTC/USDT", 0.5, 60_000.0)
    _long(engine, "ETH/USDT", -2.0, 3_000.0)
    entry = OrderRequest("ham-entry", "ETH/USDT", 1.0, 3_000.0, 1.0, 4.0, NOW)
    engine._submit(entry)
    reports = engine.kill("drill", now=NOW)
    assert engine.state.kill_switch and _value(engine, "hamilton_kill_switch") == 1.0
    flatten = {o.symbol: o for o in engine.broker.open_orders()}
    assert {s: o.signed_qty for s, o in flatten.items()} == {"BTC/USDT": -0.5, "ETH/USDT": 2.0}
    assert all(o.reduce_only for o in flatten.values())
    assert [r.status for r in reports] == ["pending", "pending"]
    canceled = _value(
        engine, "hamilton_order_reports_total", status="canceled", reason="kill_switch"
    )
    assert canceled == 1.0  # the entry order, cancelled with its reason
    assert engine.kill("again", now=NOW) == []  # flatten already in flight: nothing doubled
    broker = engine.broker
    assert isinstance(broker, PaperBroker)
    for symbol in SYMBOLS:
        broker.on_bar_open(symbol, 60_000.0 if symbol == "BTC/USDT" else 3_000.0, NOW)
    engine.apply_reports(broker.drain())
    assert engine.state.positions == {}
    engine.resume("drill over")
    assert not engine.state.kill_switch and engine.kill_reason == ""


def test_reconcile_makes_the_exchange_the_truth_and_meters_drift(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _long(engine, "BTC/USDT", 0.5, 60_000.0)
    snapshot = ExchangeSnapshot(
        cash_usd=70_000.0,
        positions={"BTC/USDT": 0.4, "ETH/USDT": 1.0},
        open_orders={"BTC/USDT": ("manual-1",)},
        taken_at=NOW,
        clock_offset_ms=-12,
        prices={"ETH/USDT": 3_000.0},
    )
    seq = engine.quiet_order_seq()
    assert seq is not None
    assert engine.reconcile_now(snapshot, seq=seq)
    assert engine.state.cash_usd == 70_000.0
    assert engine.state.position_qty("BTC/USDT") == pytest.approx(0.4)
    assert engine.state.positions["BTC/USDT"].avg_entry_price == 60_000.0  # same side: kept
    assert engine.state.position_qty("ETH/USDT") == 1.0
    assert _value(engine, "hamilton_reconcile_drift", symbol="BTC/USDT") == pytest.approx(-0.1)
    assert _value(engine, "hamilton_reconcile_drift", symbol="foreign_open_orders") == 1.0
    assert _value(engine, "hamilton_reconciles_total", result="drift") == 1.0
    assert _value(engine, "hamilton_exchange_clock_offset_ms") == -12.0


def test_reconcile_deferred_while_an_order_is_in_flight(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    seq = engine.quiet_order_seq()
    assert seq is not None
    engine._submit(OrderRequest("ham-1", "BTC/USDT", 0.1, 60_000.0, 1.0, 4.0, NOW))
    assert engine.quiet_order_seq() is None  # no read while an order is in flight
    snapshot = ExchangeSnapshot(1.0, {}, {}, NOW)
    assert not engine.reconcile_now(snapshot, seq=seq)
    assert _value(engine, "hamilton_reconciles_total", result="deferred") == 1.0


def test_snapshot_read_before_fills_is_discarded_not_applied(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    seq = engine.quiet_order_seq()
    assert seq is not None
    stale = ExchangeSnapshot(100_000.0, {}, {}, NOW)  # read before the order below filled
    engine._submit(OrderRequest("ham-2", "BTC/USDT", 0.1, 60_000.0, 1.0, 4.0, NOW))
    broker = engine.broker
    assert isinstance(broker, PaperBroker)
    broker.on_bar_open("BTC/USDT", 60_000.0, NOW)
    engine.apply_reports(broker.drain())  # the fill: the state holds 0.1 BTC
    engine.offer_snapshot(stale, seq)
    engine._apply_pending_snapshot(NOW)
    assert engine.state.position_qty("BTC/USDT") == pytest.approx(0.1)  # not overwritten
    assert engine.pending_snapshot is None  # discarded, not retried later


def test_fresh_start_reconcile_resets_the_day_equity() -> None:
    state = RiskState(cash_usd=100_000.0, day=NOW.date(), day_start_equity_usd=100_000.0)
    snapshot = ExchangeSnapshot(40_000.0, {"BTC/USDT": 0.5}, {}, NOW)
    marks = {"BTC/USDT": 60_000.0}
    fresh = reconcile_state(state, snapshot, SYMBOLS, marks, fresh_start=True).state
    resumed = reconcile_state(state, snapshot, SYMBOLS, marks).state
    assert fresh.day_start_equity_usd == pytest.approx(70_000.0)
    assert resumed.day_start_equity_usd == 100_000.0  # a resumed day keeps its loss


def test_order_book_adds_partial_fills_into_one_execution() -> None:
    book = OrderBook()
    order = OrderRequest("ham-2", "BTC/USDT", 0.3, 60_000.0, 1.5, 4.0, NOW, event_id="e1")
    book.add(order)
    first = Fill("BTC/USDT", 0.1, 60_006.0, 0.24, NOW)
    second = Fill("BTC/USDT", 0.2, 60_012.0, 0.48, NOW)
    assert book.on_report(OrderReport("ham-2", "pending", first)) is None
    execution = book.on_report(OrderReport("ham-2", "canceled", second, reason_code="timeout"))
    assert execution is not None and book.get("ham-2") is None
    assert execution.filled_qty == pytest.approx(0.3) and execution.reason_code == "timeout"
    assert execution.avg_fill_price == pytest.approx(60_010.0)
    assert execution.realized_price_impact_bps == pytest.approx(10 / 60_000 * 1e4)
    assert execution.expected_cost_bps == 5.5
    assert execution.cost_error_bps is not None
