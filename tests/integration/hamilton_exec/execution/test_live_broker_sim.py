"""CcxtBroker with the REAL ccxt binance client against the local Binance simulator
(``hamilton_exec.exchange_sim``): spot and USD-M orders end to end, faults injected on the
order endpoints, a clock offset, restarts, snapshots - and always exactly one order per
decision on the exchange (``orders_per_client_id``)."""

import io
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from hamilton_exec.exchange_sim import SimulatorServer
from hamilton_exec.execution.brokers import OrderReport, OrderRequest, client_order_id
from hamilton_exec.execution.live_broker import CcxtBroker
from hamilton_exec.execution.live_client import BrokerMetric
from tests.unit.live_fake_exchange import InlineExecutor
from trading_core.config.models import ExchangeSection, OrdersSection
from trading_core.market.ccxt_source import build_ccxt_client
from trading_core.observability.logging import configure_logging

KEY = "sk-live-4c1d2e3f4a5b6c7d8e9f0a1b2c3d"
SECRET = "zq-secret-0f9e8d7c6b5a49382716a5b4"  # noqa: S105 - a test value
BTC, ETH = 60_000.0, 3_000.0
RECV_WINDOW_MS = 500  # short, so that "not found" becomes final after 1 s
MARGIN_MS = 500
DEFINITIVE_S = (RECV_WINDOW_MS + MARGIN_MS) / 1000.0
_bars = itertools.count(1)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer(
        symbols=["BTC/USDT", "ETH/USDT"],
        api_key=KEY,
        api_secret=SECRET,
        balances={"USDT": 1_000_000, "BTC": 1, "ETH": 10},
        futures_balances={"USDT": 100_000},
    )
    with server:
        server.set_price("BTCUSDT", BTC)
        server.set_price("ETHUSDT", ETH)
        yield server


def _broker(
    sim: SimulatorServer,
    *,
    market_type: str = "spot",
    metrics: list[BrokerMetric] | None = None,
    background: bool = True,
    timeout_s: float = 4.0,
    **exchange: Any,
) -> CcxtBroker:
    section = ExchangeSection(
        api_key=SecretStr(KEY),
        api_secret=SecretStr(SECRET),
        base_url=sim.base_url,
        timeout_ms=800,
        market_types=(market_type,),
        recv_window_ms=RECV_WINDOW_MS,
        retry_backoff_s=0.1,
        max_retries=3,
        **exchange,
    )
    client = build_ccxt_client(section, market_types=(market_type,))
    broker = CcxtBroker(
        client,
        orders=OrdersSection(
            market_type=market_type, poll_interval_s=0.1, timeout_s=timeout_s, workers=4
        ),
        exchange=section,
        on_metric=None if metrics is None else metrics.append,
        executor=None if background else InlineExecutor(),
        background=background,
        not_found_margin_ms=MARGIN_MS,
    )
    broker.connect()
    return broker


def _order(symbol: str, qty: float, **fields: Any) -> OrderRequest:
    side = "buy" if qty > 0 else "sell"
    return OrderRequest(
        client_order_id=client_order_id(symbol, next(_bars) * 3_600_000, side),
        symbol=symbol,
        signed_qty=qty,
        reference_price=BTC if symbol.startswith("BTC") else ETH,
        price_adjust_bps=1.0,
        fee_bps=10.0,
        decided_at=datetime.now(UTC),
        **fields,
    )


def _wait_final(
    broker: CcxtBroker, *requests: OrderRequest, limit_s: float = 15.0
) -> list[OrderReport]:
    """Every report until each request has its final one."""
    wanted = {r.client_order_id for r in requests}
    reports: list[OrderReport] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        reports += broker.drain()
        if wanted <= {r.client_order_id for r in reports if r.final}:
            return reports
        time.sleep(0.02)
    raise AssertionError(f"no final report within {limit_s}s: {reports}")


def _placed(sim: SimulatorServer, request: OrderRequest) -> int:
    return int(sim.state()["orders_per_client_id"].get(request.client_order_id, 0))


def _fill_qty(reports: list[OrderReport]) -> float:
    return sum(r.fill.qty for r in reports if r.fill is not None)


# --- the happy path ---------------------------------------------------------------------------


def test_market_order_fills_once_under_the_decisions_client_id(sim: SimulatorServer) -> None:
    broker = _broker(sim)
    request = _order("BTC/USDT", 0.01)
    try:
        assert broker.submit(request).status == "pending"
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert [r.status for r in reports] == ["filled"]
    fill = reports[0].fill
    assert fill is not None and fill.qty == pytest.approx(0.01)
    assert fill.price == pytest.approx(BTC, rel=5e-4)
    assert fill.fee_usd == pytest.approx(0.01 * fill.price * 0.001, rel=1e-6)  # the sim's fee
    assert _placed(sim, request) == 1
    orders = sim.state()["spot"]["orders"]
    assert [o["clientOrderId"] for o in orders] == [request.client_order_id]


def test_same_decision_submitted_again_after_its_fill_is_not_sent(sim: SimulatorServer) -> None:
    broker = _broker(sim)
    request = _order("BTC/USDT", 0.01)
    try:
        broker.submit(request)
        _wait_final(broker, request)
        again = broker.submit(request)
    finally:
        broker.close()
    assert (again.status, again.reason_code) == ("rejected", "duplicate_decision")
    assert _placed(sim, request) == 1


# --- uncertain outcomes -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["accept_then_timeout", "503_after", "reset_after"])
def test_order_accepted_then_answer_lost_is_found_by_lookup_not_resent(
    sim: SimulatorServer, kind: str
) -> None:
    sim.faults.inject("POST /api/v3/order", kind, delay_s=1.5)
    broker = _broker(sim)
    request = _order("BTC/USDT", 0.01)
    try:
        broker.submit(request)
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert [r.status for r in reports] == ["filled"]
    assert _fill_qty(reports) == pytest.approx(0.01)
    assert _placed(sim, request) == 1
    assert ("POST /api/v3/order", kind) in sim.faults.fired


@pytest.mark.parametrize("kind", ["503_before", "reset_before", "timeout_before"])
def test_order_refused_before_accept_is_resent_once_the_recv_window_passed(
    sim: SimulatorServer, kind: str
) -> None:
    sim.faults.inject("POST /api/v3/order", kind, delay_s=1.5)
    broker = _broker(sim)
    request = _order("BTC/USDT", 0.01)
    started = time.monotonic()
    try:
        broker.submit(request)
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert [r.status for r in reports] == ["filled"]
    assert _placed(sim, request) == 1
    assert time.monotonic() - started >= DEFINITIVE_S


def test_lookups_answering_not_found_after_an_accept_never_double(sim: SimulatorServer) -> None:
    sim.faults.inject("POST /api/v3/order", "accept_then_timeout", delay_s=1.5)
    sim.faults.inject("GET /api/v3/order", "not_found", count=3)
    broker = _broker(sim)
    request = _order("BTC/USDT", 0.01)
    try:
        broker.submit(request)
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert [r.status for r in reports] == ["filled"]
    assert _placed(sim, request) == 1


def test_rate_limited_send_is_resent_after_a_backoff(sim: SimulatorServer) -> None:
    sim.faults.inject("POST /api/v3/order", "429", retry_after_s=1)
    metrics: list[BrokerMetric] = []
    broker = _broker(sim, metrics=metrics)
    time.sleep(DEFINITIVE_S)  # past the start's lookup-first window
    request = _order("BTC/USDT", 0.01)
    started = time.monotonic()
    try:
        broker.submit(request)
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert [r.status for r in reports] == ["filled"]
    assert _placed(sim, request) == 1
    assert time.monotonic() - started < DEFINITIVE_S  # refused: no recv-window wait
    assert any(m.name == "order_resend" for m in metrics)


# --- the clock --------------------------------------------------------------------------------


def test_server_clock_step_resyncs_on_invalid_nonce_and_resends(sim: SimulatorServer) -> None:
    broker = _broker(sim, max_clock_skew_ms=5_000)
    sim.set_clock_offset_ms(-2_500)  # our timestamps are now 2.5 s ahead: -1021
    request = _order("BTC/USDT", 0.01)
    try:
        broker.submit(request)
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert [r.status for r in reports] == ["filled"]
    assert _placed(sim, request) == 1
    assert broker.clock.offset_ms == pytest.approx(-2_500, abs=150)


def test_skew_beyond_the_bound_refuses_new_orders_lets_reduce_only_through(
    sim: SimulatorServer,
) -> None:
    sim.set_clock_offset_ms(3_000)
    broker = _broker(sim)
    try:
        assert not broker.clock.skew_ok
        refused = broker.submit(_order("BTC/USDT", 0.01))
        closing = _order("BTC/USDT", -0.01, reduce_only=True)
        assert broker.submit(closing).status == "pending"
        reports = _wait_final(broker, closing)
    finally:
        broker.close()
    assert (refused.status, refused.reason_code) == ("rejected", "clock_skew")
    assert [r.status for r in reports] == ["filled"]


# --- restarts ---------------------------------------------------------------------------------


def test_restart_after_a_send_the_saved_state_missed_finds_the_order(sim: SimulatorServer) -> None:
    dying = _broker(sim, background=False)
    request = _order("BTC/USDT", 0.01)
    dying.submit(request)
    saved = dying.to_dict()  # the last save: not sent yet
    dying.client.create_order(  # ... then the process sent it and died before saving again
        "BTC/USDT", "market", "buy", 0.01, None, {"newClientOrderId": request.client_order_id}
    )
    dying.close()
    broker = _broker(sim)
    try:
        broker.restore(saved)
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert [r.status for r in reports] == ["filled"]
    assert _fill_qty(reports) == pytest.approx(0.01)
    assert _placed(sim, request) == 1


def test_restart_before_the_send_sends_once_the_recv_window_passed(sim: SimulatorServer) -> None:
    dying = _broker(sim, background=False)
    request = _order("BTC/USDT", 0.01)
    dying.submit(request)
    saved = dying.to_dict()
    dying.close()
    broker = _broker(sim)
    try:
        broker.restore(saved)
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert [r.status for r in reports] == ["filled"]
    assert _placed(sim, request) == 1


# --- limit orders, partial fills, timeout -----------------------------------------------------


def test_resting_order_filling_in_parts_reports_each_increment(sim: SimulatorServer) -> None:
    broker = _broker(sim, timeout_s=20.0)
    request = _order("BTC/USDT", 3.0, order_type="limit", limit_price=59_000.0)
    sim.set_balances(spot={"USDT": 1_000_000})
    try:
        broker.submit(request)
        deadline = time.monotonic() + 5
        while not [o for o in sim.state()["spot"]["orders"] if o["status"] == "NEW"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        sim.set_price("BTCUSDT", 58_000.0)  # the book crosses it: one level per 100 ms
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert reports[-1].status == "filled"
    assert len([r for r in reports if r.fill is not None]) >= 2
    assert _fill_qty(reports) == pytest.approx(3.0)
    assert all(r.fill.price == pytest.approx(59_000.0) for r in reports if r.fill is not None)
    assert _placed(sim, request) == 1


def test_resting_order_past_its_timeout_is_cancelled(sim: SimulatorServer) -> None:
    broker = _broker(sim, timeout_s=2.0)  # the first second: the start's lookup-first window
    request = _order("ETH/USDT", 1.0, order_type="limit", limit_price=2_900.0)
    try:
        broker.submit(request)
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert [(r.status, r.reason_code) for r in reports] == [("canceled", "timeout")]
    assert [o["status"] for o in sim.state()["spot"]["orders"]] == ["CANCELED"]


@pytest.mark.parametrize("market_type", ["spot", "linear"])
def test_post_only_that_would_take_is_rejected(sim: SimulatorServer, market_type: str) -> None:
    broker = _broker(sim, market_type=market_type)
    request = _order("BTC/USDT", 0.01, order_type="limit", limit_price=61_000.0, post_only=True)
    try:
        broker.submit(request)
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert [(r.status, r.reason_code) for r in reports] == [("rejected", "post_only_would_take")]


def test_buy_beyond_the_balance_is_rejected_insufficient_balance(sim: SimulatorServer) -> None:
    sim.set_balances(spot={"USDT": 100})
    broker = _broker(sim)
    request = _order("BTC/USDT", 0.01)
    try:
        broker.submit(request)
        reports = _wait_final(broker, request)
    finally:
        broker.close()
    assert [(r.status, r.reason_code) for r in reports] == [("rejected", "insufficient_balance")]


def test_linear_reduce_only_closes_the_short_and_no_more(sim: SimulatorServer) -> None:
    sim.set_balances(positions={"BTCUSDT": {"amount": "-0.01", "entry_price": "60000"}})
    broker = _broker(sim, market_type="linear")
    request = _order("BTC/USDT", 0.05, reduce_only=True)
    try:
        broker.submit(request)
        reports = _wait_final(broker, request)
        snap = broker.snapshot(["BTC/USDT"])
    finally:
        broker.close()
    assert _fill_qty(reports) == pytest.approx(0.01)
    assert snap is not None and dict(snap.positions) == {}
    assert [o["reduceOnly"] for o in sim.state()["futures"]["orders"]] == [True]


# --- snapshots --------------------------------------------------------------------------------


def test_spot_snapshot_matches_the_simulators_books(sim: SimulatorServer) -> None:
    broker = _broker(sim)
    resting = _order("ETH/USDT", 1.0, order_type="limit", limit_price=2_900.0)
    try:
        broker.submit(resting)
        deadline = time.monotonic() + 5
        while not sim.state()["spot"]["orders"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        snap = broker.snapshot(["BTC/USDT", "ETH/USDT"])
    finally:
        broker.close()
    assert snap is not None
    balances = sim.state()["spot"]["balances"]
    usdt = balances["USDT"]
    assert snap.cash_usd == pytest.approx(float(usdt["free"]) + float(usdt["locked"]))
    assert dict(snap.positions) == {"BTC/USDT": pytest.approx(1.0), "ETH/USDT": pytest.approx(10.0)}
    assert dict(snap.open_orders) == {"ETH/USDT": (resting.client_order_id,)}
    assert abs(snap.clock_offset_ms) < 200


def test_linear_snapshot_reads_the_wallet_and_signed_positions(sim: SimulatorServer) -> None:
    sim.set_balances(positions={"BTCUSDT": {"amount": "-0.02", "entry_price": "59000"}})
    broker = _broker(sim, market_type="linear")
    try:
        snap = broker.snapshot(["BTC/USDT", "ETH/USDT"])
    finally:
        broker.close()
    assert snap is not None
    # cash as the risk state books it: the wallet minus the entry notional (a short
    # received it), so cash + qty x mark = wallet + unrealized PnL
    assert snap.cash_usd == pytest.approx(100_000.0 + 0.02 * 59_000.0)
    assert dict(snap.positions) == {"BTC/USDT": pytest.approx(-0.02)}
    mark = snap.prices["BTC/USDT"]
    assert mark == pytest.approx(BTC, rel=1e-3)
    equity = snap.cash_usd - 0.02 * mark
    assert equity == pytest.approx(100_000.0 - 0.02 * (mark - 59_000.0))


# --- keys -------------------------------------------------------------------------------------


def test_keys_never_reach_the_logs_reports_or_state(sim: SimulatorServer) -> None:
    stream = io.StringIO()
    configure_logging(fmt="json", stream=stream)  # no secrets registered: the broker's job
    sim.faults.inject("POST /api/v3/order", "503_after")
    sim.faults.inject("GET /api/v3/order", "503_before", count=2)
    broker = _broker(sim)
    request = _order("BTC/USDT", 0.01)
    try:
        broker.submit(request)
        reports = _wait_final(broker, request)
        state = repr(broker.to_dict())
    finally:
        broker.close()
        structlog.reset_defaults()
    text = stream.getvalue() + state + repr(reports)
    assert "order_send_failed" in text
    assert KEY not in text and SECRET not in text
