"""Hamilton's small parts: windows, the live gate, brokers' ids and paper fills, the trade
ledger, the event sink's spool, metrics names, and logs without secrets."""

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from hamilton_exec.accounting.event_store import EventSink
from hamilton_exec.accounting.ledger import TradeLedger, engine_shares
from hamilton_exec.execution.brokers import OrderRequest, PaperBroker, client_order_id
from hamilton_exec.market_data.window import Candle, CoinWindow
from hamilton_exec.settings import check_live_allowed
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from trading_core.brain import BrainLibrary
from trading_core.brain.pipeline_runs import PipelineSummary
from trading_core.config.models import EngineConfig
from trading_core.costs.kernel import fill_price_and_fee
from trading_core.engines import ENGINE_NAMES
from trading_core.errors import LiveTradingRefusedError
from trading_core.events import DecisionEvent, EngineVote
from trading_core.observability import metric_names
from trading_core.observability.logging import configure_logging
from trading_core.risk import Fill, Position

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR_MS = 3_600_000


def _candle(i: int, close: float = 100.0) -> Candle:
    return Candle(i * HOUR_MS, close, close + 1, close - 1, close, 10.0)


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=200))
def test_window_keeps_the_last_capacity_bars_in_order(capacity: int, n: int) -> None:
    window = CoinWindow("X/USDT", capacity)
    for i in range(n):
        window.append(_candle(i, 100.0 + i))
    assert len(window) == min(n, capacity) and window.bars_seen == n
    expected = np.arange(max(0, n - capacity), n) * HOUR_MS
    np.testing.assert_array_equal(window.times(), expected)
    np.testing.assert_array_equal(window.values()[3], 100.0 + expected / HOUR_MS)


def test_window_refuses_an_older_or_repeated_bar() -> None:
    window = CoinWindow("X/USDT", 5)
    window.append(_candle(3))
    with pytest.raises(ValueError, match="not after"):
        window.append(_candle(3))


def test_window_frame_round_trips_the_ohlcv_schema() -> None:
    window = CoinWindow("X/USDT", 3)
    for i in range(4):
        window.append(_candle(i, 50.0 + i))
    frame = window.frame()
    assert frame.columns == ["timestamp", "open", "high", "low", "close", "volume"]
    assert frame["close"].to_list() == [51.0, 52.0, 53.0]


@pytest.mark.parametrize(
    ("mode", "flag", "keys", "source", "refused"),
    [
        ("live", False, True, "ccxt", "--live was not given"),
        ("paper", True, False, "ccxt", "keys missing"),
        ("paper", True, True, "synthetic", "data.source"),
        ("paper", True, True, "ccxt", None),
        ("paper", False, False, "synthetic", None),
    ],
)
def test_live_trading_needs_the_flag_and_the_keys(
    mode: str, flag: bool, keys: bool, source: str, refused: str | None
) -> None:
    exchange = {"api_key": SecretStr("k"), "api_secret": SecretStr("s")} if keys else {}
    config = EngineConfig.model_validate({"data": {"source": source, "exchange": exchange}})
    if refused is None:
        check_live_allowed(config, live_flag=flag, mode=mode)  # type: ignore[arg-type]
        return
    with pytest.raises(LiveTradingRefusedError, match=refused):
        check_live_allowed(config, live_flag=flag, mode=mode)  # type: ignore[arg-type]


def test_client_order_id_is_deterministic_and_fits_binance() -> None:
    first = client_order_id("BTC/USDT", 123, "buy")
    assert first == client_order_id("BTC/USDT", 123, "buy")
    assert first != client_order_id("BTC/USDT", 123, "sell")
    assert len(first) <= 36 and first.replace("-", "").isalnum()


def test_paper_broker_fills_at_the_next_open_with_the_cost_model() -> None:
    broker = PaperBroker()
    order = OrderRequest("id-1", "X/USDT", -2.0, 100.0, 3.0, 4.0, T0)
    assert broker.submit(order).status == "pending"
    report = broker.fill_at_open("X/USDT", 101.0, T0 + timedelta(hours=1))
    assert report is not None and report.fill is not None
    price, fee = fill_price_and_fee(-2.0, 101.0, 3.0, 4.0)
    assert (report.fill.qty, report.fill.price, report.fill.fee_usd) == (-2.0, price, fee)
    assert report.fill.price < 101.0  # a sale fills below the open
    assert broker.fill_at_open("X/USDT", 101.0, T0) is None


def _event(action: str = "buy", symbol: str = "X/USDT", hour: int = 0) -> DecisionEvent:
    edge = 10.0
    return DecisionEvent(
        timestamp=T0 + timedelta(hours=hour), symbol=symbol, regime="TREND",
        engine_votes=(EngineVote("trend_v1", 0.5, 0.5, 1.0),), consensus_score=0.4,
        action=action, expected_edge_bps=edge, costs_bps=4.0, net_edge_bps=edge - 4.0,
        risk_preset="balanced", model_version="m1", reasons=("opened",),
    )  # fmt: skip


def test_ledger_attributes_a_closed_trade_to_the_engines_that_backed_it() -> None:
    ledger = TradeLedger()
    weights = np.zeros(len(ENGINE_NAMES))
    signals = np.zeros(len(ENGINE_NAMES))
    weights[[0, 1, 2]] = [3.0, 1.0, 5.0]
    signals[[0, 1, 2]] = [1.0, 1.0, -1.0]  # engine 2 voted against the long
    ledger.on_order(_event(), weights, signals, shadow=False)
    opened = Fill("X/USDT", 2.0, 100.0, 0.0, T0)
    after = Position(2.0, 100.0, 100.0)
    assert ledger.on_fill(opened, None, after) is None
    outcome = ledger.on_fill(Fill("X/USDT", -2.0, 110.0, 2.0, T0), after, None)
    assert outcome is not None and outcome.pnl_usd == pytest.approx(18.0)
    pnl = ledger.engine_pnl_usd
    assert pnl[(ENGINE_NAMES[0], "X/USDT", "TREND")] == pytest.approx(13.5)
    assert pnl[(ENGINE_NAMES[1], "X/USDT", "TREND")] == pytest.approx(4.5)
    assert (ENGINE_NAMES[2], "X/USDT", "TREND") not in pnl
    assert "X/USDT" not in ledger.open_trades
    assert TradeLedger.from_dict(json.loads(json.dumps(ledger.to_dict()))) == ledger


def test_engine_shares_sum_to_one_or_are_empty() -> None:
    shares = engine_shares(np.ones(len(ENGINE_NAMES)), np.linspace(-1, 1, len(ENGINE_NAMES)), -1.0)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert engine_shares(np.zeros(len(ENGINE_NAMES)), np.ones(len(ENGINE_NAMES)), 1.0) == {}


def test_sink_spools_without_a_database_then_flushes_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    offline = EventSink(None, spool)
    for hour in range(3):
        offline.add_event(_event(hour=hour), release_id=None, shadow=False)
    assert offline.flush().spooled == 3 and offline.spooled() == 3
    library = BrainLibrary(f"sqlite:///{tmp_path / 'brain.db'}", tmp_path / "artifacts")
    library.migrate()
    online = EventSink(library, spool)
    online.add_event(_event(hour=2), release_id=None, shadow=False)  # a duplicate of the spool
    result = online.flush()
    assert (result.events_written, result.spooled) == (3, 0)
    assert not spool.exists() and len(library.query_decision_events()) == 3
    library.close()


def test_every_shared_metric_name_is_exported() -> None:
    metrics = HamiltonMetrics(venue="binance")
    metrics.set_spread("X/USDT", 1.0, "book")
    metrics.set_spread("X/USDT", 2.0, "candles")  # one source per symbol at a time
    metrics.staleness.labels("X/USDT").set(0.0)
    metrics.engine_pnl.labels("trend_v1", "X/USDT", "TREND").set(0.0)
    metrics.latency.labels("hamilton", "tick").observe(1.0)
    metrics.confidence.labels("TREND").observe(0.5)
    metrics.costs.labels("binance", "fee").observe(4.0)
    metrics.release_info.labels("1").set(1)
    metrics.training_duration.labels("X", "TREND").set(1.0)
    metrics.training_jobs.labels("production").set(1)
    # the release timestamp exists once a push succeeded (absent rather than 1970 before)
    metrics.export_daily_runs(
        PipelineSummary(counts={}, last={}, last_push_success_at=datetime.now(UTC))
    )
    exported = {m.name for m in metrics.registry.collect()}
    names = [v for k, v in vars(metric_names).items() if k.isupper() and isinstance(v, str)]
    assert len(names) >= 17
    for name in names:
        assert name in exported or name.removesuffix("_total") in exported, name
    assert metrics.risk_state.labels("HALTED")._value.get() == 0.0
    spreads = [
        s
        for m in metrics.registry.collect()
        if m.name == "cost_model_spread_bps"
        for s in m.samples
    ]
    assert [(s.labels["source"], s.value) for s in spreads] == [("candles", 2.0)]


def test_decision_logs_are_json_with_context_and_no_secret(tmp_path: Path) -> None:
    secret = "sk-live-0123456789abcdef"  # noqa: S105 - a fake key the logs must never show
    stream = io.StringIO()
    configure_logging(fmt="json", service="hamilton", secrets=[secret], stream=stream)
    sink = EventSink(None, tmp_path / "spool.jsonl")
    event = _event()
    leaky = DecisionEvent.from_dict({**event.to_dict(), "metadata": {"reasons": [secret]}})
    sink.add_event(leaky, release_id=7, shadow=False)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all({"service", "symbol", "release_id"} <= set(line) for line in lines)
    assert lines[0]["service"] == "hamilton" and lines[0]["release_id"] == 7
    assert secret not in stream.getvalue()
