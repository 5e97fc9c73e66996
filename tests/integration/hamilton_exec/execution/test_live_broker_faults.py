"""Property: whatever the faults, one decision is at most one order on the exchange, and every
submitted order ends with exactly one final report (or stays open in the registry), its
reported fills adding up to what the exchange filled.

Randomized fault schedules on the strict scripted Binance (``tests/unit/live_fake_exchange``):
timeouts and 5xx before and after the exchange accepted, resets, 429s, -1021s, requests that
arrive late (inside or past recvWindow), lookups answering "not found" (faults and a
visibility lag), partial fills, lost cancel answers and restarts - a kill -9 at a random
moment (between steps, inside a send after the accept, inside a lookup) followed by a new
broker restored from the engine's last save (whose undrained reports are replayed; empty when
the crash came before the first save), the engine re-submitting the decisions it has no
outcome of (same client ids)."""

import logging
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hamilton_exec.execution.brokers import OrderReport, OrderRequest
from tests.unit.live_fake_exchange import Rig, SimulatedCrash, make_rig, order

CREATE_FAULTS = [
    "accept_then_timeout",
    "503_before",
    "503_after",
    "reset_after",
    "timeout_before",
    "throttle",
    "nonce",
    "lost:2000",
    "lost:4500",
    "lost:5500",
    "lost:9000",
    "crash",
    "crash_after",
    "raise:InsufficientFunds:Account has insufficient balance",
]
LOOKUP_FAULTS = ["not_found", "timeout", "503", "429", "nonce", "crash"]
CANCEL_FAULTS = ["timeout_after", "503", "crash"]
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
QTY = {"BTC/USDT": 0.01, "ETH/USDT": 0.5, "SOL/USDT": 2.0}
PRICE = {"BTC/USDT": 41_000.0, "ETH/USDT": 2_400.0, "SOL/USDT": 140.0}


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, object]:
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=3, unique=True))
    return {
        "orders": [
            (symbol, draw(st.sampled_from(["market", "limit"])), draw(st.sampled_from([1, -1])))
            for symbol in symbols
        ],
        "create": draw(st.lists(st.sampled_from(CREATE_FAULTS), max_size=4)),
        "fetch": draw(st.lists(st.sampled_from(LOOKUP_FAULTS), max_size=6)),
        "cancel": draw(st.lists(st.sampled_from(CANCEL_FAULTS), max_size=2)),
        # lookups blind to an accepted order for up to 1.5 s (below the broker's 2 s margin)
        "lag_ms": draw(st.sampled_from([0, 0, 800, 1_500])),
        "plan": tuple(draw(st.lists(st.sampled_from([0.1, 0.25, 0.5]), max_size=3))),
        "restarts": draw(st.sets(st.integers(0, 30), max_size=2)),
        # the engine saves at the end of a tick: after draining, or with reports still queued
        "save_before_drain": draw(st.booleans()),
        # with the send journal (as the service runs) or without (look up every first send)
        "journal": draw(st.booleans()),
    }


def _requests(rig: Rig, specs: object) -> list[OrderRequest]:
    requests = []
    for symbol, kind, sign in specs:  # type: ignore[attr-defined]
        qty = sign * QTY[symbol]
        if kind == "limit":  # rests: a buy below the bid, a sell above the ask
            price = PRICE[symbol] if sign > 0 else PRICE[symbol] * 1.2
            requests.append(
                order(rig.time, qty, symbol=symbol, order_type="limit", limit_price=price)
            )
        else:
            requests.append(order(rig.time, qty, symbol=symbol))
    return requests


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_random_fault_schedules_never_double_and_never_lose_an_order(
    schedule: dict[str, object],
) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    folder = Path(tempfile.mkdtemp(prefix="send-journal-"))
    journal = folder / "journal.jsonl" if schedule["journal"] else None
    rig = make_rig(journal=journal)
    rig.fake.balances.update({"ETH": 5.0, "SOL": 50.0})
    rig.fake.faults["create"].extend(schedule["create"])  # type: ignore[arg-type]
    rig.fake.faults["fetch"].extend(schedule["fetch"])  # type: ignore[arg-type]
    rig.fake.faults["cancel"].extend(schedule["cancel"])  # type: ignore[arg-type]
    rig.fake.visibility_lag_ms = int(schedule["lag_ms"])  # type: ignore[call-overload]
    rig.fake.default_plan = schedule["plan"]  # type: ignore[assignment]
    requests = _requests(rig, schedule["orders"])
    consumed: list[OrderReport] = []
    for request in requests:
        assert rig.broker.submit(request).status == "pending"
    saved: dict[str, object] = {}  # a crash before the first save: the orders are unknown
    saved_len = 0
    restarts = set(schedule["restarts"])  # type: ignore[call-overload]
    save_first = bool(schedule["save_before_drain"])
    for tick in range(600):
        try:
            rig.broker.pump()
            if save_first:
                saved, saved_len = rig.broker.to_dict(), len(consumed)
            if tick in restarts:
                raise SimulatedCrash("kill -9 between steps")
            consumed += rig.broker.drain()
            if not save_first:
                saved, saved_len = rig.broker.to_dict(), len(consumed)
        except SimulatedCrash:
            del consumed[saved_len:]  # the engine's state rolls back to its last save too
            rig = rig.restart(saved, journal=journal)
            known = {r.client_order_id for r in consumed if r.final}
            for request in requests:  # the engine re-makes the decisions it has no outcome of
                if request.client_order_id not in known:
                    rig.broker.submit(request)
            continue
        due = rig.broker.next_due()
        if not rig.broker.open_orders() or due is None:
            break
        rig.time.advance(max(due - rig.time.now(), 0.001))
    _check(rig, requests, consumed)
    rig.broker.close()
    shutil.rmtree(folder, ignore_errors=True)


def _check(rig: Rig, requests: list[OrderRequest], consumed: list[OrderReport]) -> None:
    by_cid: dict[str, list[OrderReport]] = defaultdict(list)
    for report in consumed:
        by_cid[report.client_order_id].append(report)
    still_open = {o.client_order_id for o in rig.broker.open_orders()}
    for request in requests:
        cid = request.client_order_id
        assert rig.fake.accepted.get(cid, 0) <= 1, f"{cid} placed twice"
        reports = by_cid[cid]
        finals = [r for r in reports if r.final]
        if cid in still_open:
            assert finals == []
            continue
        assert len(finals) == 1 and reports[-1].final, f"{cid}: {[r.status for r in reports]}"
        on_exchange = rig.fake.orders.get(cid, [])
        filled = sum(o.filled for o in on_exchange) * (1 if request.signed_qty > 0 else -1)
        reported = sum(r.fill.qty for r in reports if r.fill is not None)
        assert abs(reported - filled) < 1e-9, f"{cid}: reported {reported}, filled {filled}"
        assert not any(o.open for o in on_exchange), f"{cid} final but open on the exchange"
        if finals[0].status == "filled":
            assert on_exchange and on_exchange[-1].status == "FILLED"
    assert still_open == set(), f"left open: {still_open}"
