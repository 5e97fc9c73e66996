"""The exchange simulator's pure parts: matching engine, accounts, filters, signature/timestamp
rule, fault queue and synthetic klines. The mid is pinned at 50,000 so every price is known:
with a 1 bps half spread and 1 bps level steps the asks are 50005, 50010, ... and each level holds
``level_notional / mid`` = 1 BTC."""

import hashlib
import hmac
from decimal import Decimal

import pytest

from hamilton_exec.exchange_sim.binance_http import authenticate
from hamilton_exec.exchange_sim.errors import SimError
from hamilton_exec.exchange_sim.faults import FaultSchedule
from hamilton_exec.exchange_sim.market import SyntheticMarket, default_spec
from hamilton_exec.exchange_sim.matching import Engine, EngineConfig, OrderParams

T0 = 1_767_225_600_000
KEY, SECRET = "K", "S"
D = Decimal


@pytest.fixture
def engine() -> Engine:
    market = SyntheticMarket([default_spec("BTC/USDT", 50_000.0)], seed=7)
    market.pin("BTCUSDT", 50_000.0, 0)
    eng = Engine(
        market,
        EngineConfig(levels=5, level_notional=50_000.0, match_interval_ms=100),
    )
    eng.spot.set("USDT", D(1_000_000))
    eng.spot.set("BTC", D(10))
    eng.futures.wallet["USDT"] = D(100_000)
    return eng


def spot(
    side: str, kind: str, qty: str | None, price: str | None = None, **kw: object
) -> OrderParams:
    tif = kw.pop("tif", "GTC" if kind == "LIMIT" else None)
    return OrderParams(
        symbol="BTCUSDT",
        side=side,  # type: ignore[arg-type]
        type=kind,  # type: ignore[arg-type]
        quantity=None if qty is None else D(qty),
        price=None if price is None else D(price),
        time_in_force=tif,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def code_of(excinfo: pytest.ExceptionInfo[SimError]) -> tuple[int, str]:
    return excinfo.value.code, excinfo.value.msg


# --- taker flow ---------------------------------------------------------------------------


def test_market_buy_within_depth_filled_at_walked_levels(engine: Engine) -> None:
    order = engine.place("spot", spot("BUY", "MARKET", "1.5"), T0)
    assert order.status == "FILLED"
    assert [(f.price, f.qty) for f in order.fills] == [(D("50005"), D("1")), (D("50010"), D("0.5"))]
    assert order.cum_quote == D("75010")
    # the fee is taken in the asset received (10 bps of the base)
    assert engine.spot.get("BTC").free == D("10") + D("1.5") - D("0.0015")
    assert engine.spot.get("USDT").free == D(1_000_000) - D("75010")


def test_market_buy_beyond_depth_expired_partially_filled(engine: Engine) -> None:
    order = engine.place("spot", spot("BUY", "MARKET", "7"), T0)
    assert order.status == "EXPIRED"
    assert order.executed_qty == D(5)  # five levels of 1 BTC
    assert order.orig_qty == D(7)


def test_market_buy_by_quote_amount_spends_at_most_it(engine: Engine) -> None:
    order = engine.place("spot", spot("BUY", "MARKET", None, quote_order_qty=D("1000")), T0)
    assert order.status == "FILLED"
    assert order.cum_quote <= D(1000)
    assert order.executed_qty == D("0.01999")  # floor(1000 / 50005) on the 0.00001 step


def test_ioc_limit_partial_fill_expired(engine: Engine) -> None:
    order = engine.place("spot", spot("BUY", "LIMIT", "3", "50010", tif="IOC"), T0)
    assert (order.status, order.executed_qty) == ("EXPIRED", D(2))


def test_fok_unfillable_spot_expired_without_fill(engine: Engine) -> None:
    order = engine.place("spot", spot("BUY", "LIMIT", "3", "50010", tif="FOK"), T0)
    assert (order.status, order.executed_qty) == ("EXPIRED", D(0))
    assert engine.spot.get("USDT").free == D(1_000_000)


def test_fok_unfillable_futures_rejected(engine: Engine) -> None:
    with pytest.raises(SimError) as exc:
        engine.place("futures", spot("BUY", "LIMIT", "3", "50010", tif="FOK"), T0)
    assert exc.value.code == -5021


# --- resting orders -----------------------------------------------------------------------


def test_limit_buy_below_ask_rests_and_locks_quote(engine: Engine) -> None:
    order = engine.place("spot", spot("BUY", "LIMIT", "2", "49000"), T0)
    assert (order.status, order.executed_qty) == ("NEW", D(0))
    usdt = engine.spot.get("USDT")
    assert (usdt.free, usdt.locked) == (D(1_000_000) - D(98_000), D(98_000))


def test_resting_limit_partially_then_fully_filled_when_price_crosses(engine: Engine) -> None:
    order = engine.place("spot", spot("BUY", "LIMIT", "1.5", "49000"), T0)
    engine.market.pin("BTCUSDT", 48_000.0, T0 + 1000)
    engine.advance(T0 + 1000)  # one level (50000/48000 = 1.04166 BTC) per match interval
    assert order.status == "PARTIALLY_FILLED"
    assert order.executed_qty == D("1.04166")
    engine.advance(T0 + 1050)  # within the interval: nothing more
    assert order.executed_qty == D("1.04166")
    engine.advance(T0 + 1100)
    assert order.status == "FILLED"
    assert all(f.maker and f.price == D(49_000) for f in order.fills)
    usdt = engine.spot.get("USDT")
    assert usdt.locked == 0
    assert usdt.free == D(1_000_000) - D("73500")


def test_cancel_releases_lock_and_unknown_cancel_rejected(engine: Engine) -> None:
    order = engine.place("spot", spot("SELL", "LIMIT", "2", "51000"), T0)
    assert engine.spot.get("BTC").locked == D(2)
    engine.cancel("spot", "BTCUSDT", order.order_id, None, T0 + 1)
    assert (engine.spot.get("BTC").free, engine.spot.get("BTC").locked) == (D(10), D(0))
    with pytest.raises(SimError) as exc:
        engine.cancel("spot", "BTCUSDT", order.order_id, None, T0 + 2)
    assert code_of(exc) == (-2011, "Unknown order sent.")
    with pytest.raises(SimError) as exc:
        engine.lookup("spot", "BTCUSDT", None, "never-sent")
    assert code_of(exc) == (-2013, "Order does not exist.")


# --- client order ids ---------------------------------------------------------------------


def test_duplicate_client_id_while_open_rejected(engine: Engine) -> None:
    engine.place("spot", spot("BUY", "LIMIT", "1", "49000", client_order_id="c1"), T0)
    with pytest.raises(SimError) as exc:
        engine.place("spot", spot("BUY", "LIMIT", "1", "49000", client_order_id="c1"), T0)
    assert code_of(exc) == (-2010, "Duplicate order sent.")
    engine.place("futures", spot("BUY", "LIMIT", "0.01", "49000", client_order_id="f1"), T0)
    with pytest.raises(SimError) as exc:
        engine.place("futures", spot("BUY", "LIMIT", "0.01", "49000", client_order_id="f1"), T0)
    assert code_of(exc) == (-4116, "ClientOrderId is duplicated.")


def test_client_id_reused_after_fill_or_cancel_accepted(engine: Engine) -> None:
    first = engine.place("spot", spot("BUY", "MARKET", "0.1", client_order_id="c2"), T0)
    assert first.status == "FILLED"
    second = engine.place("spot", spot("BUY", "LIMIT", "1", "49000", client_order_id="c2"), T0)
    engine.cancel("spot", "BTCUSDT", None, "c2", T0)
    third = engine.place("spot", spot("BUY", "LIMIT", "1", "49000", client_order_id="c2"), T0)
    assert len({first.order_id, second.order_id, third.order_id}) == 3
    assert engine.lookup("spot", "BTCUSDT", None, "c2").order_id == third.order_id
    assert engine.orders_per_client_id["c2"] == 3


# --- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "qty", "price", "expected"),
    [
        ("LIMIT", "0.000015", "49000", "Filter failure: LOT_SIZE"),
        ("LIMIT", "0.001", "49000.005", "Filter failure: PRICE_FILTER"),
        ("LIMIT", "0.00005", "49000", "Filter failure: NOTIONAL"),
        ("MARKET", "0.00009", None, "Filter failure: NOTIONAL"),
        ("MARKET", "100", None, "Filter failure: MARKET_LOT_SIZE"),
    ],
)
def test_spot_filter_violation_rejected_1013(
    engine: Engine, kind: str, qty: str, price: str | None, expected: str
) -> None:
    with pytest.raises(SimError) as exc:
        engine.place("spot", spot("BUY", kind, qty, price), T0)
    assert code_of(exc) == (-1013, expected)


@pytest.mark.parametrize(
    ("qty", "price", "code"),
    [("0.01", "49000.05", -4014), ("0.0015", "49000", -1111), ("0.001", "49000", -4164)],
)
def test_futures_filter_violation_rejected_with_fapi_code(
    engine: Engine, qty: str, price: str, code: int
) -> None:
    with pytest.raises(SimError) as exc:
        engine.place("futures", spot("BUY", "LIMIT", qty, price), T0)
    assert exc.value.code == code


# --- balances and margin ------------------------------------------------------------------


def test_unaffordable_buy_rejected_and_nothing_moves(engine: Engine) -> None:
    engine.spot.set("USDT", D(100))
    with pytest.raises(SimError) as exc:
        engine.place("spot", spot("BUY", "LIMIT", "0.01", "49000"), T0)
    assert code_of(exc) == (-2010, "Account has insufficient balance for requested action.")
    assert engine.spot.get("USDT").free == D(100)
    assert not engine.orders["spot"]


def test_post_only_that_would_take_rejected(engine: Engine) -> None:
    with pytest.raises(SimError) as exc:
        engine.place("spot", spot("BUY", "LIMIT_MAKER", "0.01", "50005", tif=None), T0)
    assert code_of(exc) == (-2010, "Order would immediately match and take.")
    with pytest.raises(SimError) as exc:
        engine.place("futures", spot("SELL", "LIMIT", "0.01", "49995", tif="GTX"), T0)
    assert exc.value.code == -5022
    maker = engine.place("spot", spot("BUY", "LIMIT_MAKER", "0.01", "49999", tif=None), T0)
    assert maker.status == "NEW"


def test_futures_fills_move_position_and_realize_pnl(engine: Engine) -> None:
    engine.place("futures", spot("BUY", "MARKET", "0.1"), T0)
    pos = engine.futures.position("BTCUSDT")
    assert (pos.amount, pos.entry_price) == (D("0.1"), D("50005"))
    engine.market.pin("BTCUSDT", 51_000.0, T0 + 1)
    closing = engine.place("futures", spot("SELL", "MARKET", "0.1", reduce_only=True), T0 + 1)
    assert closing.fills[0].realized_pnl == (D("50994.9") - D("50005")) * D("0.1")
    assert pos.amount == 0
    fees = D("50005") * D("0.1") * D("0.0005") + D("50994.9") * D("0.1") * D("0.0005")
    assert engine.futures.wallet["USDT"] == D(100_000) + D("98.99") - fees


def test_reduce_only_that_would_increase_rejected(engine: Engine) -> None:
    with pytest.raises(SimError) as exc:
        engine.place("futures", spot("SELL", "MARKET", "0.1", reduce_only=True), T0)
    assert code_of(exc) == (-2022, "ReduceOnly Order is rejected.")
    engine.place("futures", spot("BUY", "MARKET", "0.1"), T0)
    with pytest.raises(SimError):
        engine.place("futures", spot("BUY", "MARKET", "0.1", reduce_only=True), T0)
    capped = engine.place("futures", spot("SELL", "MARKET", "0.3", reduce_only=True), T0)
    assert capped.executed_qty == D("0.1")
    assert engine.futures.position("BTCUSDT").amount == 0


def test_margin_insufficient_rejected(engine: Engine) -> None:
    engine.futures.wallet["USDT"] = D(100)
    with pytest.raises(SimError) as exc:  # 0.1 BTC at 20x needs 250 USDT of margin
        engine.place("futures", spot("BUY", "MARKET", "0.1"), T0)
    assert code_of(exc) == (-2019, "Margin is insufficient.")
    assert engine.place("futures", spot("BUY", "MARKET", "0.03"), T0).status == "FILLED"


# --- request authentication ---------------------------------------------------------------


def _signed(query: str, secret: str = SECRET) -> str:
    sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={sig}"


@pytest.mark.parametrize(
    ("timestamp", "window", "ok"),
    [
        (T0 + 999, 5000, True),
        (T0 + 1000, 5000, False),
        (T0 - 5000, 5000, True),
        (T0 - 5001, 5000, False),
        (T0 - 59_000, 60_000, True),
    ],
)
def test_timestamp_outside_window_rejected_1021(timestamp: int, window: int, ok: bool) -> None:
    raw = _signed(f"symbol=BTCUSDT&timestamp={timestamp}&recvWindow={window}")
    params = dict(p.split("=", 1) for p in raw.split("&"))

    def call() -> None:
        authenticate(KEY, raw, "", params, api_key=KEY, api_secret=SECRET, now=T0)

    if ok:
        call()
    else:
        with pytest.raises(SimError) as exc:
            call()
        assert exc.value.code == -1021


def test_bad_signature_or_key_rejected() -> None:
    raw = _signed(f"timestamp={T0}", secret=SECRET + "x")
    params = dict(p.split("=", 1) for p in raw.split("&"))
    with pytest.raises(SimError) as exc:
        authenticate(KEY, "", raw, params, api_key=KEY, api_secret=SECRET, now=T0)
    assert code_of(exc) == (-1022, "Signature for this request is not valid.")
    with pytest.raises(SimError) as exc:
        authenticate("other", "", raw, params, api_key=KEY, api_secret=SECRET, now=T0)
    assert (exc.value.code, exc.value.status) == (-2015, 401)


# --- faults and market data ---------------------------------------------------------------


def test_fault_queue_consumed_in_order_per_endpoint() -> None:
    faults = FaultSchedule()
    faults.inject("POST /api/v3/order", "503_before", count=2)
    faults.inject("* /api/v3/order", "not_found")
    assert faults.take("GET", "/api/v3/order") is not None  # the wildcard one
    assert faults.take("GET", "/api/v3/order") is None
    kinds = [f.kind for f in (faults.take("POST", "/api/v3/order") for _ in range(3)) if f]
    assert kinds == ["503_before", "503_before"]
    with pytest.raises(ValueError, match="unknown fault kind"):
        faults.inject("POST /api/v3/order", "explode")


def test_klines_deterministic_and_forming_bar_partial() -> None:
    market = SyntheticMarket([default_spec("BTC/USDT")], seed=3)
    now = T0 + 30 * 60_000 + 123
    bars = market.klines("BTCUSDT", "1h", now_ms=now, limit=3)
    assert [b[0] for b in bars] == [T0 - 2 * 3_600_000, T0 - 3_600_000, T0]
    again = SyntheticMarket([default_spec("BTC/USDT")], seed=3)
    later = again.klines("BTCUSDT", "1h", now_ms=now + 3_600_000, limit=4)
    assert later[:2] == bars[:2]  # closed bars never change
    forming, closed = bars[2], later[2]
    assert forming[1] == closed[1]  # same open
    assert float(forming[5]) < float(closed[5])  # volume so far
    assert float(forming[3]) <= float(forming[4]) <= float(forming[2])  # low <= close <= high
    assert float(forming[4]) == pytest.approx(market.mid("BTCUSDT", now), abs=0.01)
    other_seed = SyntheticMarket([default_spec("BTC/USDT")], seed=4)
    assert other_seed.klines("BTCUSDT", "1h", now_ms=now, limit=3) != bars
