"""CcxtBroker on a strict scripted Binance: validation, the order lifecycle, refusals as
reports, the clock-skew gate, cancel_all, snapshots and key hygiene (the recovery rules are in
test_live_broker_recovery.py)."""

import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import structlog

from hamilton_exec.execution.brokers import OrderReport
from hamilton_exec.execution.live_broker import CcxtBroker
from hamilton_exec.execution.live_client import BrokerMetric
from tests.unit.live_fake_exchange import KEY, SECRET, FakeBinance, FakeTime, make_rig, order
from trading_core.errors import ExchangePermanentError, ExchangeTemporaryError
from trading_core.observability.logging import configure_logging

# --- submit: validation before anything is sent ------------------------------------------------


def test_market_order_returns_pending_then_one_filled_report() -> None:
    rig = make_rig()
    request = order(rig.time, 0.01)
    submitted = rig.broker.submit(request)
    assert submitted.status == "pending" and submitted.reason_code == ""
    reports = rig.settle()
    assert [r.status for r in reports] == ["filled"]
    fill = reports[0].fill
    assert fill is not None and fill.qty == pytest.approx(0.01)
    assert fill.price == pytest.approx(42_000.0 * 1.0001)
    assert fill.fee_usd == pytest.approx(0.01 * 42_004.2 * 0.001)  # the exchange's own fee
    assert reports[0].expected_cost_bps == pytest.approx(11.0)
    assert rig.fake.accepted == {request.client_order_id: 1}
    assert rig.broker.open_orders() == ()


def test_amount_is_rounded_down_to_the_lot_step_before_send() -> None:
    rig = make_rig()
    rig.broker.submit(order(rig.time, 0.0123456))
    rig.settle()
    assert rig.fake.requests[0]["amount"] == pytest.approx(0.01234)
    assert rig.fake.requests[0]["price"] is None  # a market order carries no price


@pytest.mark.parametrize(
    ("qty", "symbol", "reason"),
    [
        (0.0001, "BTC/USDT", "filter_failure"),  # 4.2 USDT: below the 5 USDT min notional
        (0.000001, "BTC/USDT", "filter_failure"),  # below the lot step
        (200.0, "BTC/USDT", "filter_failure"),  # above the market-order max lot
        (1.0, "DOGE/USDT", "bad_symbol"),
    ],
)
def test_order_outside_market_rules_rejected_before_send(
    qty: float, symbol: str, reason: str
) -> None:
    rig = make_rig()
    request = order(rig.time, qty, symbol=symbol)
    report = rig.broker.submit(request)
    assert (report.status, report.reason_code) == ("rejected", reason)
    assert rig.fake.requests == [] and rig.broker.open_orders() == ()
    assert (
        BrokerMetric("order_report", request.symbol, request.side.value, "rejected", reason)
        in rig.metrics
    )


def test_markets_not_loaded_at_submit_validated_by_the_worker() -> None:
    rig = make_rig(markets=False)
    report = rig.broker.submit(order(rig.time, 0.0001))
    assert report.status == "pending"  # submit never waits for the network
    reports = rig.settle()
    assert [(r.status, r.reason_code) for r in reports] == [("rejected", "filter_failure")]
    assert rig.fake.requests == []


def test_second_order_on_a_busy_symbol_rejected_order_pending() -> None:
    rig = make_rig()
    first = order(rig.time, 0.01, order_type="limit", limit_price=41_000.0)
    assert rig.broker.submit(first).status == "pending"
    other = order(rig.time, -0.01, bar_ms=0)
    report = rig.broker.submit(other)
    assert (report.status, report.reason_code) == ("rejected", "order_pending")


def test_same_decision_submitted_twice_is_one_order() -> None:
    rig = make_rig()
    request = order(rig.time, 0.01)
    assert rig.broker.submit(request).status == "pending"
    again = rig.broker.submit(request)
    assert again.status == "pending" and again.detail == "already in flight"
    rig.settle()
    after = rig.broker.submit(request)
    assert (after.status, after.reason_code) == ("rejected", "duplicate_decision")
    rig.settle()
    assert rig.fake.accepted[request.client_order_id] == 1 and len(rig.fake.requests) == 1


def test_slow_exchange_never_blocks_submit() -> None:
    release = threading.Event()

    class SlowFake(FakeBinance):
        def create_order(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            release.wait(5)
            return super().create_order(*args, **kwargs)

    class WallTime(FakeTime):
        def now(self) -> float:
            return time.time()

    rig = make_rig(fake=SlowFake(WallTime()))
    broker = CcxtBroker(
        rig.fake,
        orders=rig.broker.orders,
        exchange=rig.broker.exchange.model_copy(update={"recv_window_ms": 1}),
        not_found_margin_ms=0,  # a new order's lookup-first "not found" is final at once
        executor=ThreadPoolExecutor(max_workers=2),
        background=True,
    )
    try:
        started = time.monotonic()
        first = broker.submit(order(rig.fake.time, 0.01))
        second = broker.submit(order(rig.fake.time, 1.0, symbol="ETH/USDT"))
        assert time.monotonic() - started < 0.5
        assert first.status == second.status == "pending"
        release.set()
        deadline = time.monotonic() + 5
        reports: list[OrderReport] = []
        while len(reports) < 2 and time.monotonic() < deadline:
            reports += broker.drain()
            time.sleep(0.01)
        assert sorted(r.status for r in reports) == ["filled", "filled"]
    finally:
        release.set()
        broker.close()


# --- the lifecycle: limit orders, partial fills, timeout ---------------------------------------


def test_partial_fills_reported_as_increments_then_timeout_cancels_the_rest() -> None:
    rig = make_rig()
    rig.fake.default_plan = (0.25, 0.25)  # each of the first two lookups sees 25 % more
    request = order(rig.time, 0.02, order_type="limit", limit_price=41_000.0)
    rig.broker.submit(request)
    reports = rig.settle()
    assert [r.status for r in reports] == ["pending", "pending", "canceled"]
    assert reports[-1].reason_code == "timeout"
    fills = [r.fill for r in reports if r.fill is not None]
    assert [f.qty for f in fills] == pytest.approx([0.005, 0.005])
    assert all(f.price == pytest.approx(41_000.0) for f in fills)
    assert all(f.fee_usd == pytest.approx(0.005 * 41_000.0 * 10 / 10_000) for f in fills)
    exchange = rig.fake.orders[request.client_order_id][-1]
    assert exchange.status == "CANCELED" and exchange.filled == pytest.approx(0.01)
    assert rig.fake.calls.count(("cancel", request.client_order_id)) == 1


def test_fill_between_last_poll_and_cancel_arrives_with_the_final_report() -> None:
    rig = make_rig()
    request = order(rig.time, 0.02, order_type="limit", limit_price=41_000.0)
    rig.broker.submit(request)
    rig.broker.pump()
    rig.time.advance(29.5)
    rig.fake.trade(request.client_order_id, 0.008)
    rig.time.advance(0.6)  # past the 30 s timeout before the next poll
    reports = rig.settle()
    assert [(r.status, r.reason_code) for r in reports] == [("canceled", "timeout")]
    assert reports[0].fill is not None and reports[0].fill.qty == pytest.approx(0.008)


def test_limit_order_filled_while_resting_reports_filled() -> None:
    rig = make_rig()
    request = order(rig.time, -0.1, order_type="limit", limit_price=43_000.0)
    rig.broker.submit(request)
    rig.broker.pump()
    rig.fake.trade(request.client_order_id, 0.1)
    reports = rig.settle()
    assert [r.status for r in reports] == ["filled"]
    assert reports[0].fill is not None and reports[0].fill.qty == pytest.approx(-0.1)


def test_post_only_sends_post_only_and_a_taking_price_is_refused() -> None:
    rig = make_rig()
    resting = order(rig.time, 0.01, order_type="limit", limit_price=41_000.0, post_only=True)
    rig.broker.submit(resting)
    rig.broker.pump()
    assert rig.fake.requests[0]["postOnly"] is True and "reduceOnly" not in rig.fake.requests[0]
    taker = order(
        rig.time, 0.1, symbol="ETH/USDT", order_type="limit", limit_price=2_600.0, post_only=True
    )
    rig.broker.submit(taker)
    rig.broker.pump()
    reports = rig.broker.drain()
    assert [(r.status, r.reason_code) for r in reports] == [("rejected", "post_only_would_take")]


# --- refusals by the exchange become reports -------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("raise:InsufficientFunds:Account has insufficient balance", "insufficient_balance"),
        ("raise:InvalidOrder:Filter failure: LOT_SIZE", "filter_failure"),
        ("raise:BadRequest:Filter failure: NOTIONAL", "filter_failure"),
        (
            "raise:OrderImmediatelyFillable:Order would immediately match and take.",
            "post_only_would_take",
        ),
        ("raise:OrderNotFillable:-5022 post only", "filter_failure"),
        ("raise:PermissionDenied:This symbol is restricted", "permission"),
        ("raise:AuthenticationError:Invalid API-key", "permission"),
        ("raise:AccountSuspended:This action is disabled", "permission"),
        ("raise:BadSymbol:Invalid symbol.", "bad_symbol"),
        ("raise:MarketClosed:Market is closed.", "refused"),
        ("raise:ExchangeError:something else", "refused"),
    ],
)
def test_exchange_refusal_becomes_a_rejected_report_never_resent(fault: str, reason: str) -> None:
    rig = make_rig()
    rig.fake.faults["create"].append(fault)
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    reports = rig.settle()
    assert [(r.status, r.reason_code) for r in reports] == [("rejected", reason)]
    assert len(rig.fake.requests) == 1 and rig.fake.accepted == {}
    assert BrokerMetric("order_report", "BTC/USDT", "buy", "rejected", reason) in rig.metrics


# --- reduce-only -----------------------------------------------------------------------------


def test_spot_reduce_only_sell_is_capped_by_the_held_balance() -> None:
    rig = make_rig()
    rig.fake.balances["BTC"] = 0.3
    rig.broker.submit(order(rig.time, -0.5, reduce_only=True))
    reports = rig.settle()
    assert reports[-1].status == "filled"
    assert rig.fake.requests[0]["amount"] == pytest.approx(0.3)
    assert "reduceOnly" not in rig.fake.requests[0]  # spot has no reduce-only flag
    assert reports[-1].fill is not None and reports[-1].fill.qty == pytest.approx(-0.3)


def test_spot_reduce_only_buy_rejected_nothing_to_reduce() -> None:
    rig = make_rig()
    rig.broker.submit(order(rig.time, 0.5, reduce_only=True))
    reports = rig.settle()
    assert [(r.status, r.reason_code) for r in reports] == [("rejected", "nothing_to_reduce")]
    assert rig.fake.requests == []


def test_linear_reduce_only_sends_reduce_only_and_fills_the_position_only() -> None:
    rig = make_rig(market_type="linear")
    rig.fake.positions["BTC/USDT:USDT"] = -0.02
    rig.broker.submit(order(rig.time, 0.05, reduce_only=True))
    reports = rig.settle()
    assert rig.fake.requests[0]["symbol"] == "BTC/USDT:USDT"
    assert rig.fake.requests[0]["reduceOnly"] is True
    assert reports[-1].status == "filled" and reports[-1].symbol == "BTC/USDT"
    assert reports[-1].fill is not None and reports[-1].fill.qty == pytest.approx(0.02)
    assert rig.fake.positions["BTC/USDT:USDT"] == pytest.approx(0.0)


# --- clock skew --------------------------------------------------------------------------------


def test_clock_skew_beyond_bound_refuses_new_orders_but_not_reduce_only() -> None:
    rig = make_rig()
    rig.fake.offset_ms = 4_000
    rig.broker.clock.sync()
    refused = rig.broker.submit(order(rig.time, 0.01))
    assert (refused.status, refused.reason_code) == ("rejected", "clock_skew")
    assert BrokerMetric("clock_skew_refusal", "BTC/USDT", "buy") in rig.metrics
    closing = rig.broker.submit(order(rig.time, -0.2, reduce_only=True))
    assert closing.status == "pending"
    assert [r.status for r in rig.settle()] == ["filled"]


def test_skew_appearing_after_submit_refuses_the_send() -> None:
    rig = make_rig(exchange={"time_sync_interval_s": 10.0})
    rig.broker.clock.sync()
    rig.broker.submit(order(rig.time, 0.01))
    rig.fake.offset_ms = 3_000
    rig.time.advance(11.0)  # the periodic sync is due before the send
    rig.broker.pump()
    assert [(r.status, r.reason_code) for r in rig.broker.drain()] == [("rejected", "clock_skew")]
    assert rig.fake.requests == []


def test_first_send_waits_for_a_clock_measurement() -> None:
    rig = make_rig()
    rig.fake.faults["markets"].append("timeout")
    rig.broker.submit(order(rig.time, 0.01))
    rig.settle()
    kinds = [kind for kind, _ in rig.fake.calls]
    assert kinds.index("time") < kinds.index("create")


def test_connect_retries_temporary_failures_then_measures_the_clock() -> None:
    rig = make_rig(markets=False)
    rig.fake.faults["markets"].append("timeout")
    rig.fake.faults["time"].extend(["timeout", "timeout"])
    rig.fake.offset_ms = 300
    rig.broker.connect()
    assert rig.fake.markets is not None
    assert rig.broker.clock.synced and rig.broker.clock.offset_ms == 300


def test_connect_gives_up_with_exchange_temporary_error() -> None:
    rig = make_rig(markets=False)
    rig.fake.faults["time"].extend(["timeout"] * 4)
    with pytest.raises(ExchangeTemporaryError, match="fetch_time still failing after 3"):
        rig.broker.connect()


# --- cancel_all --------------------------------------------------------------------------------


def test_cancel_all_cancels_open_orders_and_lets_reduce_only_ones_go() -> None:
    rig = make_rig()
    resting = order(rig.time, -0.1, order_type="limit", limit_price=45_000.0)
    rig.broker.submit(resting)
    rig.broker.pump()
    flatten = order(rig.time, -0.05, bar_ms=1, reduce_only=True)
    assert rig.broker.submit(flatten).status == "pending"  # waits behind the resting order
    rig.broker.cancel_all("kill_switch")
    in_flight = [o for o in rig.broker.open_orders() if o.reduce_only]
    assert in_flight == [flatten]  # the engine's kill skips this symbol's flatten
    reports = {r.client_order_id: r for r in rig.settle()}
    canceled = reports[resting.client_order_id]
    assert (canceled.status, canceled.reason_code) == ("canceled", "kill_switch")
    assert rig.fake.orders[resting.client_order_id][-1].status == "CANCELED"
    assert reports[flatten.client_order_id].status == "filled"
    sent = [r["cid"] for r in rig.fake.requests]
    assert sent == [resting.client_order_id, flatten.client_order_id]


def test_cancel_all_before_the_send_cancels_without_sending() -> None:
    rig = make_rig()
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    rig.broker.cancel_all("kill_switch")
    reports = rig.settle()
    assert [(r.status, r.reason_code) for r in reports] == [("canceled", "kill_switch")]
    assert rig.fake.requests == []


# --- snapshot ----------------------------------------------------------------------------------


def test_spot_snapshot_reads_cash_base_positions_open_orders_and_offset() -> None:
    rig = make_rig()
    rig.fake.offset_ms = 250
    resting = order(rig.time, 0.01, order_type="limit", limit_price=41_000.0)
    rig.broker.submit(resting)
    rig.broker.pump()
    snap = rig.broker.snapshot(["BTC/USDT", "ETH/USDT"])
    assert snap is not None
    assert snap.cash_usd == pytest.approx(100_000.0)
    assert dict(snap.positions) == {"BTC/USDT": pytest.approx(0.5)}  # ETH 0: not a position
    assert dict(snap.open_orders) == {"BTC/USDT": (resting.client_order_id,)}
    assert snap.clock_offset_ms == 250


def test_snapshot_of_many_symbols_reads_open_orders_in_one_call() -> None:
    rig = make_rig()
    resting = order(rig.time, 0.5, symbol="ETH/USDT", order_type="limit", limit_price=2_400.0)
    rig.broker.submit(resting)
    rig.broker.pump()
    symbols = ["BTC/USDT", "ETH/USDT", *(f"C{i}/USDT" for i in range(12))]  # 14 x 6 > 80
    reads = len([c for c in rig.fake.calls if c[0] == "read"])
    snap = rig.broker.snapshot(symbols)
    assert snap is not None
    assert dict(snap.open_orders) == {"ETH/USDT": (resting.client_order_id,)}
    assert len([c for c in rig.fake.calls if c[0] == "read"]) - reads == 2  # balance + orders
    assert rig.fake.options["fetchOpenOrders"]["warnWithoutSymbol"] is False


def test_linear_snapshot_reads_wallet_balance_and_signed_positions() -> None:
    rig = make_rig(market_type="linear")
    rig.fake.positions["BTC/USDT:USDT"] = -0.02
    snap = rig.broker.snapshot(["BTC/USDT"])
    assert snap is not None
    assert snap.cash_usd == pytest.approx(100_000.0)  # the wallet, not + unrealized PnL
    assert dict(snap.positions) == {"BTC/USDT": pytest.approx(-0.02)}
    assert dict(snap.prices) == {"BTC/USDT": pytest.approx(42_000.0)}


def test_snapshot_retries_temporary_errors_with_backoff() -> None:
    rig = make_rig()
    rig.broker.clock.sync()
    rig.fake.faults["read"].extend(["503", "429"])
    before = rig.time.now()
    snap = rig.broker.snapshot(["BTC/USDT"])
    assert snap is not None and rig.time.now() - before == pytest.approx(0.5 + 1.0)


def test_snapshot_exhausted_retries_raise_exchange_temporary_error() -> None:
    rig = make_rig()
    rig.broker.clock.sync()
    rig.fake.faults["read"].extend(["503"] * 4)
    with pytest.raises(ExchangeTemporaryError, match="fetch_balance still failing after 3"):
        rig.broker.snapshot(["BTC/USDT"])


def test_snapshot_permanent_error_raises_at_once() -> None:
    rig = make_rig()
    rig.broker.clock.sync()
    rig.fake.faults["read"].append("raise:AuthenticationError:Invalid API-key")
    with pytest.raises(ExchangePermanentError, match="AuthenticationError"):
        rig.broker.snapshot(["BTC/USDT"])
    assert rig.fake.faults["read"] == type(rig.fake.faults["read"])()


# --- keys --------------------------------------------------------------------------------------


def test_keys_never_appear_in_logs_reports_state_or_exceptions() -> None:
    stream = io.StringIO()
    configure_logging(fmt="json", stream=stream)  # no secrets registered: the broker's own job
    rig = make_rig()
    rig.fake.error_text = f"apiKey={KEY} secret={SECRET}"
    rig.fake.faults["create"].append("raise:AuthenticationError:Invalid API-key")
    rig.broker.submit(order(rig.time, 0.01))
    reports = rig.settle()
    rig.fake.faults["create"].append("raise:RequestTimeout:timed out")
    rig.broker.submit(order(rig.time, 0.01, symbol="ETH/USDT"))
    rig.broker.pump()
    state = json.dumps(rig.broker.to_dict())
    rig.fake.faults["read"].append("raise:PermissionDenied:nope")
    with pytest.raises(ExchangePermanentError) as raised:
        rig.broker.snapshot(["BTC/USDT"])
    text = "\n".join([stream.getvalue(), state, str(raised.value), repr(reports)])
    assert "Invalid API-key" in text  # the errors did get logged and reported ...
    assert KEY not in text and SECRET not in text  # ... without the keys
    assert raised.value.__cause__ is None
    structlog.reset_defaults()


def test_metrics_failure_never_stops_an_order() -> None:
    rig = make_rig()

    def broken(metric: BrokerMetric) -> None:
        raise RuntimeError("prometheus down")

    rig.broker._on_metric = broken
    rig.broker.submit(order(rig.time, 0.01))
    assert [r.status for r in rig.settle()] == ["filled"]
