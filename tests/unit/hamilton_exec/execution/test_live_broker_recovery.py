"""CcxtBroker's exactly-once rules on a strict scripted Binance: uncertain sends are looked up
(never resent blindly), "not found" is final only past recvWindow + margin, throttling and
InvalidNonce are refusals, and a restart (to_dict -> new broker -> restore) neither doubles
nor forgets an order."""

import pytest

from hamilton_exec.execution.brokers import OrderReport
from hamilton_exec.execution.live_client import BrokerMetric
from tests.unit.live_fake_exchange import RECV_WINDOW_MS, SimulatedCrash, make_rig, order

DEFINITIVE_S = (RECV_WINDOW_MS + 2_000) / 1000.0  # recvWindow + the broker's default margin


def _filled_qty(reports: list[OrderReport], cid: str) -> float:
    return sum(r.fill.qty for r in reports if r.client_order_id == cid and r.fill is not None)


@pytest.mark.parametrize("fault", ["accept_then_timeout", "503_after", "reset_after"])
def test_uncertain_send_after_accept_is_looked_up_never_resent(fault: str) -> None:
    rig = make_rig()
    rig.fake.faults["create"].append(fault)
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    reports = rig.settle()
    assert [r.status for r in reports] == ["filled"]
    assert len(rig.fake.requests) == 1 and rig.fake.accepted[request.client_order_id] == 1
    assert _filled_qty(reports, request.client_order_id) == pytest.approx(0.01)
    assert ("fetch", request.client_order_id) in rig.fake.calls


def test_lookup_lagging_behind_the_accept_is_waited_for_not_resent() -> None:
    rig = make_rig()
    rig.fake.visibility_lag_ms = 3_000  # accepted, but lookups answer "not found" for 3 s
    rig.fake.faults["create"].append("accept_then_timeout")
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    reports = rig.settle()
    assert [r.status for r in reports] == ["filled"]
    assert len(rig.fake.requests) == 1 and rig.fake.accepted[request.client_order_id] == 1


def test_send_refused_before_accept_is_resent_only_after_the_recv_window() -> None:
    rig = make_rig()
    rig.fake.faults["create"].append("503_before")
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    reports = rig.settle()
    assert [r.status for r in reports] == ["filled"]
    first, second = rig.fake.requests
    assert second["at"] - first["at"] > DEFINITIVE_S
    assert rig.fake.accepted[request.client_order_id] == 1
    assert BrokerMetric("order_resend", "BTC/USDT", "buy", reason="not_found") in rig.metrics


def test_request_arriving_late_inside_the_recv_window_is_found_not_doubled() -> None:
    rig = make_rig()
    rig.fake.faults["create"].append("lost:3000")
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    reports = rig.settle()
    assert [r.status for r in reports] == ["filled"]
    assert len(rig.fake.requests) == 1 and rig.fake.accepted[request.client_order_id] == 1


def test_request_arriving_after_the_recv_window_is_refused_so_one_resend_is_safe() -> None:
    rig = make_rig()
    rig.fake.faults["create"].append("lost:7000")  # Binance refuses it on arrival (-1021)
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    reports = rig.settle()
    rig.time.advance(5.0)
    rig.fake.fetch_time()  # let the late copy arrive
    assert [r.status for r in reports] == ["filled"]
    assert len(rig.fake.requests) == 2 and rig.fake.accepted[request.client_order_id] == 1
    assert rig.fake.in_transit == []


def test_failing_lookups_keep_the_order_pending_and_never_resend() -> None:
    rig = make_rig()
    rig.fake.faults["create"].append("503_before")
    rig.fake.on_first_create = lambda: rig.fake.faults["fetch"].extend(
        ["timeout", "503", "429"] * 3
    )
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    for _ in range(9):  # while the lookups fail: pending, one send only
        rig.broker.pump()
        assert rig.broker.open_orders() == (request,)
        assert len(rig.fake.requests) == 1
        assert rig.broker.drain() == []
        rig.time.advance(max((rig.broker.next_due() or 0.0) - rig.time.now(), 0.001))
    assert BrokerMetric("order_state_unknown", "BTC/USDT", "buy") in rig.metrics
    reports = rig.settle()
    assert [r.status for r in reports] == ["filled"]
    assert rig.fake.accepted[request.client_order_id] == 1


def test_lookups_failing_forever_leave_the_order_unknown_in_the_registry() -> None:
    rig = make_rig()
    rig.fake.faults["create"].append("accept_then_timeout")
    rig.fake.on_first_create = lambda: rig.fake.faults["fetch"].extend(["503"] * 10_000)
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    assert rig.settle(limit_s=120.0) == []
    assert rig.broker.open_orders() == (request,)
    assert len(rig.fake.requests) == 1
    saved = rig.broker.to_dict()["orders"]
    assert [o["phase"] for o in saved] == ["unknown"]
    later = sum(1 for kind, _ in rig.fake.calls if kind == "fetch")
    assert later >= 100  # still looked up every poll (1 s)


def test_unknown_order_past_its_timeout_is_never_resent() -> None:
    rig = make_rig()
    rig.fake.faults["create"].append("503_before")
    rig.fake.on_first_create = lambda: rig.fake.faults["fetch"].extend(["503"] * 40)
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    reports = rig.settle()
    assert [(r.status, r.reason_code) for r in reports] == [("canceled", "timeout")]
    assert len(rig.fake.requests) == 1 and rig.fake.accepted == {}


def test_throttled_send_is_resent_after_a_backoff() -> None:
    rig = make_rig()
    rig.fake.faults["create"].append("throttle")
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    reports = rig.settle()
    assert [r.status for r in reports] == ["filled"]
    first, second = rig.fake.requests
    assert second["at"] - first["at"] == pytest.approx(0.5)
    assert rig.fake.accepted[request.client_order_id] == 1
    assert BrokerMetric("order_resend", "BTC/USDT", "buy", reason="throttled") in rig.metrics


def test_throttled_beyond_max_retries_rejected_rate_limited() -> None:
    rig = make_rig()
    rig.fake.faults["create"].extend(["throttle"] * 4)
    rig.broker.submit(order(rig.time, 0.01))
    reports = rig.settle()
    assert [(r.status, r.reason_code) for r in reports] == [("rejected", "rate_limited")]
    assert len(rig.fake.requests) == 4


def test_invalid_nonce_resyncs_the_clock_and_resends_once() -> None:
    rig = make_rig(exchange={"max_clock_skew_ms": 5_000})
    rig.broker.clock.sync()

    def step_back() -> None:  # the server clock steps back: our timestamps are ahead
        rig.fake.offset_ms = -2_500

    rig.fake.on_first_create = step_back
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    reports = rig.settle()
    assert [r.status for r in reports] == ["filled"]
    assert len(rig.fake.requests) == 2 and rig.fake.accepted[request.client_order_id] == 1
    assert rig.fake.options["adjustForTimeDifference"] is True
    assert rig.fake.options["timeDifference"] == 2_500  # ccxt's sign: local - server
    assert rig.broker.clock.offset_ms == -2_500


def test_invalid_nonce_again_after_the_resync_is_rejected_clock_skew() -> None:
    rig = make_rig()
    rig.fake.faults["create"].extend(["nonce", "nonce"])
    rig.broker.submit(order(rig.time, 0.01))
    reports = rig.settle()
    assert [(r.status, r.reason_code) for r in reports] == [("rejected", "clock_skew")]
    assert len(rig.fake.requests) == 2 and rig.fake.accepted == {}


def test_duplicate_client_id_answer_means_the_order_exists() -> None:
    rig = make_rig()
    request = order(rig.time, 0.01, order_type="limit", limit_price=41_000.0)
    rig.fake._accept(  # an earlier process placed it; it is still open
        {"symbol": "BTC/USDT", "type": "limit", "side": "buy", "amount": 0.01}
        | {"price": 41_000.0, "cid": request.client_order_id},
        ts=0,
    )
    rig.broker.submit(request)
    rig.broker.pump()
    assert rig.broker.drain() == [] and rig.broker.open_orders() == (request,)
    rig.fake.trade(request.client_order_id, 0.01)
    reports = rig.settle()
    assert [r.status for r in reports] == ["filled"]
    assert rig.fake.accepted[request.client_order_id] == 1


def test_cancel_answer_lost_then_lookup_reports_the_cancel() -> None:
    rig = make_rig()
    rig.fake.faults["cancel"].append("timeout_after")
    request = order(rig.time, 0.01, order_type="limit", limit_price=41_000.0)
    rig.broker.submit(request)
    reports = rig.settle()
    assert [(r.status, r.reason_code) for r in reports] == [("canceled", "timeout")]


# --- restarts ----------------------------------------------------------------------------------


def test_crash_after_accept_restart_finds_the_order_never_doubles() -> None:
    rig = make_rig()
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    saved = rig.broker.to_dict()  # the last save: the order not sent yet
    rig.fake.faults["create"].append("crash_after")
    with pytest.raises(SimulatedCrash):
        rig.broker.pump()
    rig.time.advance(2.0)
    reports = rig.restart(saved).settle()
    assert [r.status for r in reports] == ["filled"]
    assert _filled_qty(reports, request.client_order_id) == pytest.approx(0.01)
    assert len(rig.fake.requests) == 1 and rig.fake.accepted[request.client_order_id] == 1


def test_crash_before_the_request_left_restart_sends_after_the_recv_window() -> None:
    rig = make_rig()
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    saved = rig.broker.to_dict()
    rig.fake.faults["create"].append("crash")
    with pytest.raises(SimulatedCrash):
        rig.broker.pump()
    restart_at = rig.time.now()
    reports = rig.restart(saved).settle()
    assert [r.status for r in reports] == ["filled"]
    assert rig.fake.requests[-1]["at"] - restart_at > DEFINITIVE_S
    assert rig.fake.accepted[request.client_order_id] == 1


def test_restart_of_a_partly_filled_order_reports_only_the_rest() -> None:
    rig = make_rig()
    rig.fake.default_plan = (0.25,)
    request = order(rig.time, 0.02, order_type="limit", limit_price=41_000.0)
    rig.broker.submit(request)
    rig.broker.pump()
    rig.time.advance(1.0)
    rig.broker.pump()
    consumed = rig.broker.drain()
    assert _filled_qty(consumed, request.client_order_id) == pytest.approx(0.005)
    saved = rig.broker.to_dict()
    rig.fake.trade(request.client_order_id, 0.015)
    rig.time.advance(3.0)
    consumed += rig.restart(saved).settle()
    assert [r.status for r in consumed] == ["pending", "filled"]
    assert _filled_qty(consumed, request.client_order_id) == pytest.approx(0.02)
    assert len(rig.fake.requests) == 1


def test_restored_order_keeps_its_timeout() -> None:
    rig = make_rig()
    request = order(rig.time, 0.01, order_type="limit", limit_price=41_000.0)
    rig.broker.submit(request)
    rig.broker.pump()
    saved = rig.broker.to_dict()
    rig.time.advance(20.0)
    restarted = rig.restart(saved)
    started = rig.time.now()
    reports = restarted.settle()
    assert [(r.status, r.reason_code) for r in reports] == [("canceled", "timeout")]
    assert rig.time.now() - started < 12.0  # 30 s from the first submit, not from the restart


def test_reports_not_yet_drained_survive_a_restart() -> None:
    rig = make_rig()
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    rig.broker.pump()  # filled, report queued, not drained
    saved = rig.broker.to_dict()
    restarted = rig.restart(saved)
    reports = restarted.broker.drain()
    assert [r.status for r in reports] == ["filled"]
    assert reports[0].fill is not None and reports[0].fill.qty == pytest.approx(0.01)
    again = restarted.broker.submit(request)
    assert (again.status, again.reason_code) == ("rejected", "duplicate_decision")


def test_resubmitted_decision_from_before_the_start_is_looked_up_not_doubled() -> None:
    rig = make_rig()
    request = order(rig.time, 0.01)
    rig.broker.submit(request)
    rig.settle()  # filled by the first process; its state is lost
    rig.time.advance(10.0)
    fresh = rig.restart({})
    report = fresh.broker.submit(request)  # the engine re-runs the bar's decision
    assert report.status == "pending"
    reports = fresh.settle()
    assert [r.status for r in reports] == ["filled"]  # found by client id
    assert len(rig.fake.requests) == 1 and rig.fake.accepted[request.client_order_id] == 1


def test_old_decision_never_sent_is_sent_once_the_recv_window_passed() -> None:
    rig = make_rig()
    request = order(rig.time, 0.01)
    rig.time.advance(1.0)
    fresh = rig.restart({})
    restart_at = rig.time.now()
    fresh.broker.submit(request)
    reports = fresh.settle()
    assert [r.status for r in reports] == ["filled"]
    assert rig.fake.requests[0]["at"] - restart_at > DEFINITIVE_S  # looked up first
    assert len(rig.fake.requests) == 1
