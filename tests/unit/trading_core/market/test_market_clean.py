"""One validated path for candles: every kind of bad candle is rejected (or repaired) with the
same reason by clean_ohlcv and by each consumer reading through it: the ranking's universe
snapshot, training's dataset read and Hamilton's replay feed."""

import asyncio
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from hamilton_exec.market_data.feeds import ReplayFeed
from tests.unit.market_fixtures import HOUR, candles, fresh_structlog, with_row  # noqa: F401
from trading_core.config import load_config
from trading_core.config.models import CoinSelectionSection
from trading_core.market.parquet_store import ParquetSource, ParquetStore
from trading_core.market.ranking import liquidity_ranking
from trading_core.market.schema import OHLCV_SCHEMA
from trading_core.market.validation import (
    REJECT_REASONS,
    REPAIR_REASONS,
    clean_ohlcv,
    validate_ohlcv,
)
from trading_core.training import jobs

SYMBOL = "TST/USDT"
NOW_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
N_BARS = 47
START = NOW_HOUR - N_BARS * HOUR  # the last clean candle opened an hour ago: it is closed
AS_OF = NOW_HOUR + 2 * HOUR  # every consumer reads up to here
ROW = 30  # the candle made bad; within the ranking's last 24h
SELECTION = CoinSelectionSection(min_age_days=0, min_daily_volume_usd=1.0, max_spread_bps=1e6)


def _base() -> pl.DataFrame:
    return candles(N_BARS, start=START)


def _change(**values: Any) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda frame: with_row(frame, ROW, **values)


def _repeat(**values: Any) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """A second row for ROW's timestamp, right after it (in time order)."""

    def mutate(frame: pl.DataFrame) -> pl.DataFrame:
        copy = with_row(frame, ROW, **values).slice(ROW, 1)
        return pl.concat([frame.head(ROW + 1), copy, frame.slice(ROW + 1)])

    return mutate


def _swap(frame: pl.DataFrame) -> pl.DataFrame:
    order = list(range(frame.height))
    order[ROW], order[ROW + 1] = order[ROW + 1], order[ROW]
    return frame[order]


def _future(n: int) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda frame: pl.concat([frame, candles(n, start=NOW_HOUR, price=200.0)])


# (mutation, {reason: count}): o=130, c=130.5, h=131.5, l=129 at ROW before the change.
CASES: dict[str, tuple[Callable[[pl.DataFrame], pl.DataFrame], dict[str, int]]] = {
    "null_value": (_change(close=None), {"null_value": 1}),
    "nan_value": (_change(close=float("nan")), {"nan_value": 1}),
    "infinite_value": (_change(volume=float("inf")), {"infinite_value": 1}),
    "non_positive_price": (_change(low=0.0), {"non_positive_price": 1}),
    "negative_volume": (_change(volume=-1.0), {"negative_volume": 1}),
    "high_below_low": (_change(high=128.0, low=129.0), {"high_below_low": 1}),
    "high_below_open_close": (_change(high=130.2), {"high_below_open_close": 1}),
    "low_above_open_close": (_change(low=130.2), {"low_above_open_close": 1}),
    "off_grid_timestamp": (
        lambda frame: with_row(frame, ROW, timestamp=START + ROW * HOUR + timedelta(minutes=7)),
        {"off_grid_timestamp": 1},
    ),
    "implausible_volume": (_change(volume=1e15), {"implausible_volume": 1}),
    "conflicting_duplicate": (_repeat(close=130.7), {"conflicting_duplicate": 2}),
    "future_candle": (_future(2), {"future_candle": 1, "open_candle": 1}),
    "exact_duplicate": (_repeat(), {"exact_duplicate": 1}),
    "out_of_order": (_swap, {"out_of_order": 1}),
    "open_candle": (_future(1), {"open_candle": 1}),
}


@pytest.fixture(autouse=True)
def _clock_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The consumers judge open candles on the wall clock: place the candles relative to the
    hour this test runs in (not the hour the module was imported in: a suite can cross an
    hour), and never start within seconds of the hour's end."""
    now = datetime.now(UTC)
    if now.minute == 59 and now.second >= 55:
        time.sleep(60 - now.second + 0.5)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    monkeypatch.setattr(sys.modules[__name__], "NOW_HOUR", hour)
    monkeypatch.setattr(sys.modules[__name__], "START", hour - N_BARS * HOUR)
    monkeypatch.setattr(sys.modules[__name__], "AS_OF", hour + 2 * HOUR)


def _reasons(logs: list[dict[str, Any]]) -> dict[str, int]:
    events = ("ohlcv_candles_rejected", "ohlcv_candles_repaired", "ohlcv_open_candle_dropped")
    found: dict[str, int] = {}
    for e in logs:
        if e["event"] in events:
            found[e["reason"]] = found.get(e["reason"], 0) + e.get("count", 1)
    return found


def _store(tmp_path: Path, frame: pl.DataFrame, symbol: str = SYMBOL) -> ParquetStore:
    """A store holding ``frame`` as written by something else (no validation on the way in)."""
    store = ParquetStore(tmp_path / "ohlcv")
    store.root.mkdir(parents=True, exist_ok=True)
    frame.cast(pl.Schema(OHLCV_SCHEMA)).write_parquet(store.path(symbol, "1h"))
    return store


def _via_clean(frame: pl.DataFrame, store: ParquetStore) -> tuple[dict[str, int], list[datetime]]:
    with structlog.testing.capture_logs() as logs:
        bars = clean_ohlcv(frame, symbol=SYMBOL, timeframe="1h").frame
    return _reasons(logs), bars["timestamp"].to_list()


def _via_ranking(frame: pl.DataFrame, store: ParquetStore) -> tuple[dict[str, int], list[datetime]]:
    with structlog.testing.capture_logs() as logs:
        snapshot, quality = ParquetSource(store).universe_snapshot_with_quality(AS_OF)
    ranking = liquidity_ranking(snapshot, SELECTION, quality=quality)
    assert _reasons(logs) == {**quality.rejected_candles, **quality.repaired_candles}
    kept = store.read_clean(SYMBOL, "1h", AS_OF - timedelta(days=1), AS_OF).frame
    volume = float((kept["close"] * kept["volume"]).sum())
    assert snapshot["daily_volume_usd"].to_list() == [pytest.approx(volume)]
    assert dict(ranking.rejected_candles) == dict(quality.rejected_candles)
    return {**ranking.rejected_candles, **quality.repaired_candles}, kept["timestamp"].to_list()


def _via_training(
    frame: pl.DataFrame, store: ParquetStore, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, int], list[datetime]]:
    seen: dict[str, Any] = {}

    def capture(symbol: str, timeframe: str, bars: pl.DataFrame, **kw: Any) -> str:
        seen.update(bars=bars, btc=kw["btc_bars"])
        return "prepared"

    monkeypatch.setattr(jobs, "prepare_coin_frame", capture)
    job = jobs.CoinJob(
        SYMBOL, "1h", AS_OF, "day", str(store.root), load_config(), regimes=("TREND",)
    )
    with structlog.testing.capture_logs() as logs:
        prepared: object = jobs.load_coin_frame(job)
    assert prepared == "prepared"
    assert seen["btc"] is None  # the BTC reference is optional
    return _reasons(logs), seen["bars"]["timestamp"].to_list()


def _via_hamilton(
    frame: pl.DataFrame, store: ParquetStore
) -> tuple[dict[str, int], list[datetime]]:
    with structlog.testing.capture_logs() as logs:
        feed = ReplayFeed(
            ParquetSource(store), [SYMBOL], "1h", start=START + 24 * HOUR, end=AS_OF,
            history_bars=24, extra_symbols=("BTC/USDT",),
        )  # fmt: skip

    async def ticks() -> list[datetime]:
        return [t.candles[SYMBOL].open_ms async for t in feed.ticks() if SYMBOL in t.candles]

    history = feed.history(SYMBOL)["timestamp"].to_list()
    opened = [datetime.fromtimestamp(ms / 1000, UTC) for ms in asyncio.run(ticks())]
    assert "BTC/USDT" not in feed.known_symbols()
    return _reasons(logs), history + opened


@pytest.mark.parametrize("consumer", ["clean_ohlcv", "ranking", "training", "hamilton"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_candle_kind_same_reason_through_every_consumer(
    case: str, consumer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mutate, expected = CASES[case]
    frame = mutate(_base())
    store = _store(tmp_path, frame)
    direct = clean_ohlcv(frame, symbol=SYMBOL, timeframe="1h").frame["timestamp"].to_list()
    if consumer == "training":
        reasons, kept = _via_training(frame, store, monkeypatch)
    else:
        run = {"clean_ohlcv": _via_clean, "ranking": _via_ranking, "hamilton": _via_hamilton}
        reasons, kept = run[consumer](frame, store)
    assert reasons == expected
    window_start = AS_OF - timedelta(days=1) if consumer == "ranking" else START
    assert kept == [t for t in direct if t >= window_start]
    assert set(expected) <= set(REJECT_REASONS) | set(REPAIR_REASONS)


def test_every_reason_label_has_a_case() -> None:
    covered = {reason for _, expected in CASES.values() for reason in expected}
    assert covered == set(REJECT_REASONS) | set(REPAIR_REASONS)


def test_clean_candles_identical_through_clean_and_validate() -> None:
    frame = _base()
    cleaned = clean_ohlcv(frame, symbol=SYMBOL, timeframe="1h")
    assert cleaned.frame.equals(validate_ohlcv(frame, symbol=SYMBOL, timeframe="1h").frame)
    assert cleaned.frame.equals(frame.cast(pl.Schema(OHLCV_SCHEMA)))
    assert (dict(cleaned.rejected), dict(cleaned.repaired), cleaned.gaps) == ({}, {}, ())


def test_clean_store_read_equals_raw_read(tmp_path: Path) -> None:
    store = _store(tmp_path, _base())
    assert store.read_clean(SYMBOL, "1h").frame.equals(store.read(SYMBOL, "1h"))


MUTATIONS = [m for name, (m, _) in CASES.items() if name not in ("future_candle", "open_candle")]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(picks=st.lists(st.integers(0, len(MUTATIONS) - 1), min_size=1, max_size=6))
def test_clean_output_always_passes_strict_validation(picks: list[int]) -> None:
    frame = _base()
    for i in picks:
        frame = MUTATIONS[i](frame)
    cleaned = clean_ohlcv(frame, symbol=SYMBOL, timeframe="1h")
    again = validate_ohlcv(cleaned.frame, symbol=SYMBOL, timeframe="1h")
    assert again.frame.equals(cleaned.frame)
    assert cleaned.frame.height + cleaned.rejected_total <= frame.height
