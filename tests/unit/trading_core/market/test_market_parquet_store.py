"""The parquet store and source on real Binance files: layout, round trip, idempotent append,
atomic writes, and a universe snapshot derived from candles."""

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tests.unit.market_fixtures import (
    REAL_DATA,
    fresh_structlog,  # noqa: F401  (autouse)
    manifest,
    require_real_data,
)
from trading_core.errors import DataSourceError, DataValidationError
from trading_core.market.parquet_store import ParquetSource, ParquetStore
from trading_core.market.schema import OHLCV_SCHEMA

AS_OF = datetime(2021, 5, 20, tzinfo=UTC)


def _real(name: str) -> pl.DataFrame:
    return pl.read_parquet(require_real_data() / name)


@pytest.fixture
def store(tmp_path: Path) -> ParquetStore:
    return ParquetStore(tmp_path / "ohlcv")


def test_real_folder_layout_is_read_as_a_store() -> None:
    real = ParquetStore(require_real_data())
    hourly = real.list_symbols("1h")
    expected = [
        name
        for name, row in manifest().items()
        if row["file"].startswith("ohlcv/") and row["timeframe"] == "1h"
    ]
    assert len(hourly) == len(expected) == 126
    assert "BTC/USDT" in hourly and "ADA/BTC" in real.list_symbols("5m")
    last = real.last_timestamp("AAVE/USDT", "1h")
    assert last == datetime(2021, 7, 17, 20, tzinfo=UTC)
    window = real.read("BTC/USDT", "1h", AS_OF, AS_OF + timedelta(hours=5))
    assert window.height == 5 and window["timestamp"][0] == AS_OF


def test_round_trip_of_a_real_file_is_exact(store: ParquetStore) -> None:
    original = _real("ETH_USDT-1h.parquet")
    assert store.write("ETH/USDT", "1h", original) == original.height
    assert store.path("ETH/USDT", "1h").name == "ETH_USDT-1h.parquet"
    assert store.read("ETH/USDT", "1h").equals(original.cast(pl.Schema(OHLCV_SCHEMA)))


def test_append_merges_without_duplicates_and_rerun_adds_nothing(store: ParquetStore) -> None:
    full = _real("SOL_USDT-1h.parquet")
    store.write("SOL/USDT", "1h", full.head(3000))
    assert store.append("SOL/USDT", "1h", full.slice(2500)) == full.height - 3000
    assert store.read("SOL/USDT", "1h").equals(full.cast(pl.Schema(OHLCV_SCHEMA)))
    mtime = store.path("SOL/USDT", "1h").stat().st_mtime_ns
    assert store.append("SOL/USDT", "1h", full.slice(100, 2000)) == 0
    assert store.path("SOL/USDT", "1h").stat().st_mtime_ns == mtime  # nothing rewritten


def test_append_contradicting_a_stored_candle_rejected_and_file_kept(store: ParquetStore) -> None:
    full = _real("DOT_USDT-1h.parquet").head(100)
    store.write("DOT/USDT", "1h", full)
    changed = full.slice(50, 10).with_columns(pl.col("close") * 1.01, pl.col("high") * 1.02)
    with pytest.raises(DataValidationError, match="conflicting duplicate"):
        store.append("DOT/USDT", "1h", changed)
    assert store.read("DOT/USDT", "1h").equals(full.cast(pl.Schema(OHLCV_SCHEMA)))


def test_writes_leave_no_temp_files(store: ParquetStore) -> None:
    store.write("LINK/USDT", "1h", _real("LINK_USDT-1h.parquet").head(10))
    store.append("LINK/USDT", "1h", _real("LINK_USDT-1h.parquet").slice(5, 10))
    assert [p.name for p in store.root.iterdir()] == ["LINK_USDT-1h.parquet"]


def test_empty_store_reads_empty_and_source_names_missing_file(store: ParquetStore) -> None:
    assert store.read("BTC/USDT", "1h").is_empty()
    assert store.last_timestamp("BTC/USDT", "1h") is None
    assert store.list_symbols("1h") == []
    with pytest.raises(DataSourceError, match=r"BTC_USDT-1h\.parquet"):
        ParquetSource(store).fetch_ohlcv(
            "BTC/USDT", "1h", start=AS_OF, end=AS_OF + timedelta(days=1)
        )


def test_source_serves_validated_window_and_funding(store: ParquetStore) -> None:
    store.write("XRP/USDT", "1h", _real("XRP_USDT-1h.parquet"))
    funding_file = REAL_DATA / "other" / "binance-futures_XRP_USDT_USDT-8h-funding_rate.parquet"
    shutil.copy(funding_file, store.funding_path("XRP/USDT"))
    source = ParquetSource(store)
    bars = source.fetch_ohlcv("XRP/USDT", "1h", start=AS_OF, end=AS_OF + timedelta(days=2))
    assert bars.height == 48
    start = datetime(2021, 12, 1, tzinfo=UTC)
    rates = source.funding_rates("XRP/USDT", start=start, end=start + timedelta(days=3))
    assert rates.height == 9
    assert rates["funding_rate"].is_between(-0.01, 0.01).all()
    assert source.funding_rates("BTC/USDT", start=start, end=start + timedelta(days=3)).is_empty()


def test_snapshot_from_real_candles() -> None:
    source = ParquetSource(ParquetStore(require_real_data()))
    snap = source.universe_snapshot(AS_OF)
    assert "LPT/USDT" not in snap["symbol"].to_list()  # first candle 2021-05-28, after as_of
    assert "ADA/BTC" not in snap["symbol"].to_list()  # another quote
    ar = snap.filter(pl.col("symbol") == "AR/USDT").row(0, named=True)
    assert (ar["listing_date"], ar["age_days"]) == (date(2021, 5, 14), 6)
    btc = snap.filter(pl.col("symbol") == "BTC/USDT").row(0, named=True)
    day = _real("BTC_USDT-1h.parquet").filter(
        pl.col("timestamp").is_between(AS_OF - timedelta(days=1), AS_OF, closed="left")
    )
    assert btc["daily_volume_usd"] == pytest.approx((day["close"] * day["volume"]).sum())
    assert btc["last_price"] == day["close"][-1]
    assert 0.0 < btc["spread_bps"] < 8.0
    cs = ParquetSource(ParquetStore(require_real_data()), spread_estimator="corwin_schultz")
    cs_btc = cs.universe_snapshot(AS_OF).filter(pl.col("symbol") == "BTC/USDT")["spread_bps"].item()
    assert cs_btc > btc["spread_bps"]
