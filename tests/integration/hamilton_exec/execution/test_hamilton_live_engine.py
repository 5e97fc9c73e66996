"""Hamilton's decisions through the LIVE broker: a two-day replay of the synthetic market with a
trained release, every approved decision sent by :class:`CcxtBroker` (the real ccxt binance
client) to the local Binance simulator, spot.

Proven end to end: every order reaches the exchange exactly once under its decision's client
id; fills come back as reports and move the risk state the way they moved the exchange's
balances (a reconcile afterwards finds only fee-sized drift); the spot venue's refusal of a
short sale (no base coin to sell) becomes the order's outcome with a reason code, never an
exception out of the tick; each execution carries the cost the model expected and the cost
realized.
"""

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from hamilton_exec.exchange_sim.market import default_spec
from hamilton_exec.exchange_sim.server import SimulatorServer
from hamilton_exec.execution.brokers import ExchangeSnapshot, OrderReport, OrderRequest
from hamilton_exec.execution.live_broker import CcxtBroker
from hamilton_exec.execution.orders_flow import Execution
from hamilton_exec.execution.send_journal import SendJournal
from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, ReplayWindow
from tests.integration.hamilton_fixtures import (
    full_history_symbols,
    hamilton_config,
    make_release,
    market,
)
from trading_core.brain import BrainLibrary
from trading_core.config.models import ExchangeSection
from trading_core.market.ccxt_source import build_ccxt_client

KEY, SECRET = "engine-live-key", "engine-live-secret"
REPLAY_DAYS = 5


class PinnedPriceBroker:
    """The live broker, with the simulator's mid pinned to each order's reference price just
    before it is submitted, so the venue trades where the decision priced (the synthetic
    market Hamilton replays and the simulator's own walk are different markets)."""

    def __init__(self, inner: CcxtBroker, simulator: SimulatorServer) -> None:
        self.inner, self.simulator = inner, simulator
        self.name = inner.name
        self.executions: list[Execution] = []

    def submit(self, order: OrderRequest) -> OrderReport:
        self.simulator.set_price(order.symbol.replace("/", ""), order.reference_price)
        return self.inner.submit(order)

    def on_bar_open(self, symbol: str, open_price: float, opened_at: datetime) -> None:
        self.inner.on_bar_open(symbol, open_price, opened_at)

    def drain(self) -> list[OrderReport]:
        return self.inner.drain()

    def open_orders(self) -> tuple[OrderRequest, ...]:
        return self.inner.open_orders()

    def cancel_all(self, reason: str) -> None:
        self.inner.cancel_all(reason)

    def snapshot(self, symbols: Sequence[str]) -> ExchangeSnapshot | None:
        return self.inner.snapshot(symbols)

    def to_dict(self) -> dict[str, Any]:
        return self.inner.to_dict()

    def restore(self, data: Mapping[str, Any]) -> None:
        self.inner.restore(data)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Any, ...]]:
    active = {
        "consensus": {"adaptive_thresholds": {"TREND": 0.15, "RANGE": 0.15, "PANIC": 0.2}},
        "cost_model": {
            "min_edge_after_cost_bps": -80.0,
            "instrument": "spot",
            "fee_schedule": {"binance": {"maker_bps": 10.0, "taker_bps": 10.0}},
        },
        "hamilton": {"orders": {"market_type": "spot", "timeout_s": 5, "poll_interval_s": 0.1}},
    }
    config = hamilton_config(tmp_path, **active)
    source = market(config)
    symbols = tuple(full_history_symbols(source)[:4])
    library = BrainLibrary.from_config(config)
    library.migrate()
    make_release(
        library, config, source, symbols, train_end=source.end - timedelta(days=REPLAY_DAYS)
    )
    start = source.end - timedelta(days=1)
    last = {
        s: float(source.fetch_ohlcv(s, "1h", start=start, end=source.end)["close"][-1])
        for s in symbols
    }
    specs = [default_spec(s, price=last[s]) for s in symbols]
    with SimulatorServer(
        symbols=specs, balances={"USDT": 1_000_000}, api_key=KEY, api_secret=SECRET
    ) as simulator:
        yield config, source, library, symbols, simulator


def _live_broker(config: Any, simulator: SimulatorServer, journal: Path) -> CcxtBroker:
    exchange = ExchangeSection(
        api_key=SecretStr(KEY), api_secret=SecretStr(SECRET), base_url=simulator.base_url,
        timeout_ms=3000, retry_backoff_s=0.05, market_types=("spot",),
    )  # fmt: skip
    client = build_ccxt_client(exchange, market_types=("spot",))
    client.enableRateLimit = False  # the simulator meters weight itself
    broker = CcxtBroker(
        client, orders=config.hamilton.orders, exchange=exchange, journal=SendJournal(journal)
    )
    broker.connect()
    return broker


def _quiet(broker: PinnedPriceBroker, engine: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while broker.open_orders() and time.monotonic() < deadline:
        engine.apply_reports(broker.drain())
        time.sleep(0.05)
    engine.apply_reports(broker.drain())
    assert not broker.open_orders(), "orders still in flight"


def test_replay_through_live_broker_orders_once_fills_match_exchange(
    setup: tuple[Any, ...],
) -> None:
    config, source, library, symbols, simulator = setup
    journal = Path(config.hamilton.state_path) / "order_journal.jsonl"
    broker = PinnedPriceBroker(_live_broker(config, simulator, journal), simulator)
    window = ReplayWindow(source.end - timedelta(days=REPLAY_DAYS), source.end)
    settings = HamiltonSettings.from_config(
        config, symbols=symbols, replay=window, metrics_port=None, health_port=None
    )
    prepared = build_service(config, settings, library=library, source=source, broker=broker)
    engine = prepared.service.engine
    executions: list[Execution] = []
    engine.sink.add_execution = executions.append  # type: ignore[method-assign]
    try:
        summary = asyncio.run(prepared.service.run())
        _quiet(broker, engine)
        snapshot = broker.snapshot(symbols)
    finally:
        broker.close()

    assert summary.orders >= 3, summary
    per_id = simulator.state()["orders_per_client_id"]
    sent = {e.client_order_id for e in executions if e.reason_code != "order_pending"}
    assert per_id and set(per_id.values()) == {1}, executions  # one order per decision
    assert set(per_id) <= sent | {e.client_order_id for e in executions}
    filled = [e for e in executions if e.filled_qty > 0]
    assert filled, executions
    for execution in filled:
        assert execution.realized_cost_bps is not None
        # the price impact of a small market order on the simulator's ladder around the
        # pinned mid: half its 1 bps spread, a little more when it walks a level
        assert execution.realized_price_impact_bps is not None
        assert 0.0 <= execution.realized_price_impact_bps < 5.0
        assert execution.realized_fee_bps == pytest.approx(10.0, abs=0.6)
    refused = [e for e in executions if e.status == "rejected"]
    assert all(e.reason_code for e in refused)
    assert snapshot is not None
    for symbol in symbols:
        held = snapshot.positions.get(symbol, 0.0)
        assert engine.state.position_qty(symbol) == pytest.approx(held, rel=2e-3, abs=1e-9)
    events = library.query_decision_events()
    assert len(events) == summary.ticks * len(symbols)
