"""The ranking on a store with bad candles and corrupt files: bad candles are dropped and
counted (never ranked, never mistaken for low volume), a corrupt file is named in one line and
skipped unless it is the only input; Hamilton's replay skips a corrupt coin the same way."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import structlog

from hamilton_exec.market_data.feeds import ReplayFeed
from tests.unit.market_fixtures import fresh_structlog, with_row  # noqa: F401  (autouse)
from trading_core.config.models import CoinSelectionSection
from trading_core.errors import CorruptDataFileError
from trading_core.market.parquet_store import ParquetSource, ParquetStore
from trading_core.market.ranking import liquidity_ranking
from trading_core.market.schema import OHLCV_SCHEMA

START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 10
AS_OF = START + timedelta(days=DAYS)
SELECTION = CoinSelectionSection(
    min_age_days=0, min_daily_volume_usd=1e5, max_spread_bps=1e4, ranking_method="volume"
)


def _walk(seed: int, *, price: float, volume: float) -> pl.DataFrame:
    """``DAYS`` of seeded random-walk hourly candles with a realistic high/low range."""
    rng = np.random.default_rng(seed)
    n = DAYS * 24
    close = price * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.concatenate([[price], close[:-1]])
    wick = np.abs(rng.normal(0, 0.002, (2, n)))
    return pl.DataFrame(
        {
            "timestamp": [START + timedelta(hours=i) for i in range(n)],
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": volume * rng.uniform(0.5, 1.5, n),
        }
    ).cast(pl.Schema(OHLCV_SCHEMA))


def _store(tmp_path: Path, frames: dict[str, pl.DataFrame], garbage: tuple[str, ...] = ()) -> Path:
    root = tmp_path / "ohlcv"
    store = ParquetStore(root)
    root.mkdir(parents=True, exist_ok=True)
    for symbol, frame in frames.items():
        frame.write_parquet(store.path(symbol, "1h"))  # as written by another tool: unvalidated
    for symbol in garbage:
        store.path(symbol, "1h").write_bytes(b"this is not a parquet file" * 8)
    return root


def _last_row() -> int:
    return DAYS * 24 - 3  # a candle of the last day


def test_inverted_coin_with_huge_volume_no_longer_ranks_first(tmp_path: Path) -> None:
    bad = with_row(_walk(3, price=1.0, volume=1e6), _last_row(), high=0.5, low=2.0, volume=1e15)
    huge = with_row(_walk(4, price=1.0, volume=1e6), _last_row(), volume=1e15)
    frames = {
        "AAA/USDT": _walk(1, price=100.0, volume=5e4),  # ~5e6 USD an hour: the real leader
        "BBB/USDT": _walk(2, price=10.0, volume=1e5),
        "BAD/USDT": bad,
        "HUGE/USDT": huge,
    }
    source = ParquetSource(ParquetStore(_store(tmp_path, frames)))
    snapshot, quality = source.universe_snapshot_with_quality(AS_OF)
    ranking = liquidity_ranking(snapshot, SELECTION, quality=quality)
    assert ranking.symbols[0] == "AAA/USDT"
    assert dict(ranking.rejected_candles) == {"high_below_low": 1, "implausible_volume": 1}
    volumes = dict(zip(snapshot["symbol"], snapshot["daily_volume_usd"], strict=True))
    assert volumes["BAD/USDT"] < 1e8 and volumes["HUGE/USDT"] < 1e8
    assert "candles rejected: high_below_low: 1, implausible_volume: 1" in ranking.to_markdown()


def test_nan_close_is_a_rejected_candle_not_below_min_volume(tmp_path: Path) -> None:
    frames = {"NAN/USDT": with_row(_walk(5, price=10.0, volume=1e5), _last_row(), close=np.nan)}
    source = ParquetSource(ParquetStore(_store(tmp_path, frames)))
    snapshot, quality = source.universe_snapshot_with_quality(AS_OF)
    ranking = liquidity_ranking(snapshot, SELECTION, quality=quality)
    assert ranking.symbols == ["NAN/USDT"]
    assert ranking.removed_by_filter["min_daily_volume_usd"] == 0
    assert dict(ranking.rejected_candles) == {"nan_value": 1}


def test_corrupt_file_read_names_the_file_in_one_line(tmp_path: Path) -> None:
    store = ParquetStore(_store(tmp_path, {}, garbage=("BAD/USDT",)))
    path = str(store.path("BAD/USDT", "1h"))
    for read in (
        lambda: store.read("BAD/USDT", "1h"),
        lambda: store.read_clean("BAD/USDT", "1h"),
        lambda: store.time_span("BAD/USDT", "1h"),
    ):
        with pytest.raises(CorruptDataFileError) as caught:
            read()
        message = str(caught.value)
        assert caught.value.path == path and path in message
        assert "\n" not in message and "coin-engine data fetch" in message


def test_corrupt_file_skipped_by_ranking_and_counted(tmp_path: Path) -> None:
    frames = {"AAA/USDT": _walk(1, price=100.0, volume=5e4)}
    source = ParquetSource(ParquetStore(_store(tmp_path, frames, garbage=("BAD/USDT",))))
    with structlog.testing.capture_logs() as logs:
        snapshot, quality = source.universe_snapshot_with_quality(AS_OF)
    ranking = liquidity_ranking(snapshot, SELECTION, quality=quality)
    bad_path = str(source.store.path("BAD/USDT", "1h"))
    assert ranking.symbols == ["AAA/USDT"]
    assert ranking.skipped_files == (bad_path,)
    assert any(e["event"] == "universe_file_skipped" and e["path"] == bad_path for e in logs)
    assert source.newest_close() == AS_OF


def test_only_corrupt_files_ranking_raises_naming_them(tmp_path: Path) -> None:
    source = ParquetSource(ParquetStore(_store(tmp_path, {}, garbage=("BAD/USDT", "ZZZ/USDT"))))
    with pytest.raises(CorruptDataFileError, match="all 2 1h candle files") as caught:
        source.universe_snapshot(AS_OF)
    assert "BAD_USDT-1h.parquet" in str(caught.value) and "\n" not in str(caught.value)


def test_replay_skips_a_corrupt_coin_and_a_missing_btc(tmp_path: Path) -> None:
    frames = {"AAA/USDT": _walk(1, price=100.0, volume=5e4)}
    source = ParquetSource(ParquetStore(_store(tmp_path, frames, garbage=("BAD/USDT",))))
    with structlog.testing.capture_logs() as logs:
        feed = ReplayFeed(
            source, ["AAA/USDT", "BAD/USDT"], "1h", start=AS_OF - timedelta(days=1), end=AS_OF,
            history_bars=48, extra_symbols=("BTC/USDT",),
        )  # fmt: skip
    assert feed.known_symbols() == {"AAA/USDT"}
    assert feed.history("BAD/USDT").is_empty() and feed.history("AAA/USDT").height == 48
    skipped = {e["symbol"]: e["reason"] for e in logs if e["event"] == "replay_symbol_skipped"}
    assert skipped == {"BAD/USDT": "corrupt_file", "BTC/USDT": "optional_symbol_missing"}


def test_replay_with_every_coin_corrupt_raises_one_line(tmp_path: Path) -> None:
    source = ParquetSource(ParquetStore(_store(tmp_path, {}, garbage=("BAD/USDT",))))
    with pytest.raises(CorruptDataFileError) as caught:
        ReplayFeed(
            source, ["BAD/USDT"], "1h", start=AS_OF - timedelta(days=1), end=AS_OF,
            history_bars=48, extra_symbols=("BTC/USDT",),
        )  # fmt: skip
    assert "BAD_USDT-1h.parquet" in str(caught.value) and "\n" not in str(caught.value)
