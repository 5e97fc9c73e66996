"""Hamilton's StreamingFeed with a REAL ccxt.pro client against the simulator's websockets.

The simulator runs 60x faster than the wall clock (a 1m bar closes every wall second) and the
feed reads the simulator's clock, so its settings are in market seconds. Checked: every tick
carries each coin's closed bar exactly once, equal to the REST kline of that bar (no bar missed,
none doubled) through disconnects, out-of-order and delayed messages, and a depth-stream
sequence gap; books arrive with every tick and go stale when their stream stalls.
"""

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from hamilton_exec.exchange_sim import SimulatorServer
from hamilton_exec.market_data.market_books import book_for_decision
from hamilton_exec.market_data.stream_feed import StreamingFeed
from hamilton_exec.market_data.window import Tick, candles_of
from hamilton_exec.telemetry.feed_metrics import FeedMetrics
from trading_core.config.models import ExchangeSection, MarketDataFeedSection
from trading_core.costs import BookStatus
from trading_core.errors import DataSourceError
from trading_core.market.ccxt_source import CcxtSource, build_ccxt_client

SYMBOLS = ("BTC/USDT", "ETH/USDT", *[f"S{i:02d}/USDT" for i in range(22)])  # 24 coins
TIMEFRAME = "1m"
SETTINGS = MarketDataFeedSection(  # market seconds (the simulator runs 60x: 150 s = 2.5 s wall)
    bar_grace_s=150.0,
    rest_fill_after_s=60.0,
    heartbeat_timeout_s=240.0,
    max_book_age_s=90.0,
    reconnect_backoff_s=0.1,
    reconnect_backoff_max_s=0.5,
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(
        symbols=SYMBOLS, seed=11, time_scale=60.0, stream_interval_s=0.25
    ) as server:
        yield server


@pytest.fixture(autouse=True)
def no_faults(sim: SimulatorServer) -> Iterator[None]:
    yield
    sim.ws_faults.clear()


def _clock(sim: SimulatorServer) -> datetime:
    return datetime.fromtimestamp(sim.server_time_ms() / 1000, tz=UTC)


def _feed(
    sim: SimulatorServer, *, book: str = "bookTicker", **overrides: float
) -> tuple[StreamingFeed, FeedMetrics, CcxtSource]:
    exchange = ExchangeSection(base_url=sim.base_url, timeout_ms=3000)
    client = build_ccxt_client(exchange, market_types=("spot",), streaming=True)
    client.enableRateLimit = False
    source = CcxtSource(exchange, quote="USDT", clock=lambda: _clock(sim))
    source.client.enableRateLimit = False
    metrics = FeedMetrics(CollectorRegistry())
    settings = SETTINGS.model_copy(update={"book": book, **overrides})
    feed = StreamingFeed(
        client, source, SYMBOLS, TIMEFRAME, history_bars=5, settings=settings,
        clock=lambda: _clock(sim), metrics=metrics,
    )  # fmt: skip
    return feed, metrics, source


async def _collect(
    feed: StreamingFeed,
    bars: int,
    on_tick: dict[int, object] | None = None,
    after_ms: int | None = None,
) -> list[Tick]:
    ticks: list[Tick] = []
    stream = feed.ticks(after_ms=after_ms)
    try:
        async for tick in stream:
            ticks.append(tick)
            action = (on_tick or {}).get(len(ticks))
            if callable(action):
                action()
            if len(ticks) == bars:
                break
    finally:
        await stream.aclose()
    return ticks


def _assert_every_bar_once(ticks: list[Tick], source: CcxtSource) -> None:
    step = 60_000
    opens = [t.open_ms for t in ticks]
    assert opens == list(range(opens[0], opens[0] + step * len(opens), step)), "bar missed"
    for tick in ticks:
        assert sorted(tick.candles) == sorted(SYMBOLS), f"coins missing at {tick.open_ms}"
        assert all(c.open_ms == tick.open_ms for c in tick.candles.values())
    start = datetime.fromtimestamp(opens[0] / 1000, tz=UTC)
    end = start + timedelta(minutes=len(opens))
    for symbol in ("BTC/USDT", "S07/USDT"):
        rest = {
            c.open_ms: c
            for c in candles_of(source.fetch_ohlcv(symbol, TIMEFRAME, start=start, end=end))
        }
        assert [t.candles[symbol] for t in ticks] == [rest[o] for o in opens]


def test_stream_24_coins_every_closed_bar_once_equal_to_rest(sim: SimulatorServer) -> None:
    feed, metrics, source = _feed(sim)
    ticks = asyncio.run(_collect(feed, 4))
    _assert_every_bar_once(ticks, source)
    # the first bar closed before the subscription: REST filled it; later bars streamed
    assert metrics.gap_filled._value.get() >= len(SYMBOLS)
    # later bars came over the stream (how many depends on the machine's load: at least one)
    assert metrics.bars.labels("stream")._value.get() >= len(SYMBOLS)
    assert metrics.bars.labels("rest")._value.get() == metrics.gap_filled._value.get()
    last = ticks[-1]
    assert last.books is not None and sorted(last.books) == sorted(SYMBOLS)
    top, status = book_for_decision(last.books, "BTC/USDT", last.now, SETTINGS.max_book_age_s)
    assert status is BookStatus.FRESH and top is not None and top.spread_bps > 0


def test_disconnects_and_reordered_messages_lose_and_double_no_bar(sim: SimulatorServer) -> None:
    feed, metrics, source = _feed(sim)
    actions = {
        1: lambda: sim.ws_faults.inject("disconnect"),
        2: lambda: sim.ws_faults.inject("reorder", count=30),
        3: lambda: sim.ws_faults.inject("disconnect", count=10),
        4: lambda: sim.ws_faults.inject("delay", delay_s=0.3, count=40),
    }
    ticks = asyncio.run(_collect(feed, 6, actions))
    _assert_every_bar_once(ticks, source)
    reconnects = sum(metrics.reconnects.labels(s)._value.get() for s in ("ohlcv", "book"))
    assert reconnects >= 2


def test_depth_sequence_gap_resyncs_the_book_and_keeps_bars(sim: SimulatorServer) -> None:
    feed, metrics, source = _feed(sim, book="depth")
    actions = {2: lambda: sim.ws_faults.inject("depth_gap", symbol="ETHUSDT", count=1)}
    ticks = asyncio.run(_collect(feed, 5, actions))
    _assert_every_bar_once(ticks, source)
    assert metrics.dropped.labels("depth_resync")._value.get() >= 1
    last = ticks[-1]
    assert last.books is not None
    _, status = book_for_decision(last.books, "ETH/USDT", last.now, SETTINGS.max_book_age_s)
    assert status is BookStatus.FRESH


def test_stalled_book_stream_goes_stale_for_decisions(sim: SimulatorServer) -> None:
    feed, _, _ = _feed(sim)
    # 5 wall seconds = 300 market seconds of silence; the last tick's bar closes >= 4 bars later
    actions = {2: lambda: sim.ws_faults.inject("stall", stream="*@bookTicker", duration_s=5.0)}
    ticks = asyncio.run(_collect(feed, 7, actions))
    stale = [
        book_for_decision(t.books, "BTC/USDT", t.now, SETTINGS.max_book_age_s)[1] for t in ticks
    ]
    assert stale[0] is BookStatus.FRESH
    assert BookStatus.STALE in stale[2:], stale


def test_silent_connection_is_torn_down_by_the_heartbeat_and_no_bar_is_missed(
    sim: SimulatorServer,
) -> None:
    feed, metrics, source = _feed(sim, heartbeat_timeout_s=90.0)  # 1.5 s wall
    actions = {2: lambda: sim.ws_faults.inject("stall", stream="*", duration_s=2.5)}
    ticks = asyncio.run(_collect(feed, 6, actions))
    _assert_every_bar_once(ticks, source)
    assert metrics.reconnects.labels("ohlcv")._value.get() >= 1
    assert metrics.gap_filled._value.get() > len(SYMBOLS)  # the stalled bars came over REST


def test_start_long_after_a_close_fills_the_missed_bars_over_rest(sim: SimulatorServer) -> None:
    feed, metrics, source = _feed(sim)
    first_open_ms = feed.next_open_ms
    time.sleep(3.0)  # 180 market seconds: the first bar is past its grace when ticks start
    ticks = asyncio.run(_collect(feed, 6))
    assert ticks[0].open_ms == first_open_ms
    _assert_every_bar_once(ticks, source)
    assert metrics.gap_filled._value.get() >= 3 * len(SYMBOLS)


def test_unknown_symbol_ends_the_feed_with_one_clear_error(sim: SimulatorServer) -> None:
    exchange = ExchangeSection(base_url=sim.base_url, timeout_ms=3000)
    client = build_ccxt_client(exchange, market_types=("spot",), streaming=True)
    source = CcxtSource(exchange, quote="USDT", clock=lambda: _clock(sim))
    feed = StreamingFeed(
        client, source, ["NOPE/USDT"], TIMEFRAME, history_bars=5, settings=SETTINGS,
        clock=lambda: _clock(sim),
    )  # fmt: skip
    with pytest.raises(DataSourceError, match="NOPE/USDT"):
        asyncio.run(_collect(feed, 1))
