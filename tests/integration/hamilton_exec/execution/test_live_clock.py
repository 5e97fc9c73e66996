"""Clock discipline against the simulator: with the local clock 3 minutes ahead of the
exchange, a candle still forming on the exchange must not be taken for closed. Hamilton's live
market data judges closedness on the measured exchange clock (``ExchangeClock.now``); the local
clock would accept the forming candle. The measured skew is beyond the bound, which keeps the
broker from sending new orders until it is back."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from hamilton_exec.exchange_sim.server import SimulatorServer
from hamilton_exec.execution.exchange_clock import ExchangeClock
from trading_core.config.models import ExchangeSection
from trading_core.market.ccxt_source import CcxtSource, build_ccxt_client

SKEW_MS = -180_000  # the exchange 3 minutes behind this host


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(symbols=("BTC/USDT",), clock_offset_ms=SKEW_MS) as server:
        yield server


def _exchange(simulator: SimulatorServer) -> ExchangeSection:
    return ExchangeSection(
        api_key=SecretStr("sim-key"), api_secret=SecretStr("sim-secret"),
        base_url=simulator.base_url, market_types=("spot",), retry_backoff_s=0.01,
    )  # fmt: skip


def test_local_clock_ahead_forming_candle_rejected_on_exchange_time(
    simulator: SimulatorServer,
) -> None:
    exchange = _exchange(simulator)
    client = build_ccxt_client(exchange, market_types=("spot",))
    clock = ExchangeClock.for_client(client, exchange)
    clock.sync()
    assert clock.offset_ms == pytest.approx(SKEW_MS, abs=500)
    assert not clock.skew_ok  # beyond max_clock_skew_ms: no new orders

    forming_before_ms = simulator.server_time_ms() // 60_000 * 60_000
    local_now = datetime.now(UTC)
    start = local_now - timedelta(minutes=30)
    on_exchange_time = CcxtSource(exchange, client=client, clock=clock.now)
    on_local_time = CcxtSource(exchange, client=client)
    exchange_bars = on_exchange_time.fetch_ohlcv("BTC/USDT", "1m", start=start, end=local_now)
    local_bars = on_local_time.fetch_ohlcv("BTC/USDT", "1m", start=start, end=local_now)

    exchange_now_ms = simulator.server_time_ms()
    forming_open_ms = exchange_now_ms // 60_000 * 60_000
    last_exchange = int(exchange_bars["timestamp"].dt.epoch("ms")[-1])
    last_local = int(local_bars["timestamp"].dt.epoch("ms")[-1])
    assert last_exchange + 60_000 <= exchange_now_ms  # every bar closed on exchange time
    # the local clock took the forming bar for closed (the minute may roll during the test)
    assert last_local in (forming_before_ms, forming_open_ms)
    assert last_local + 60_000 > exchange_now_ms - 60_000
