"""fetch_to_store: fills a store from a source, resumes, backfills, reruns add nothing."""

from datetime import timedelta
from pathlib import Path

import pytest

from tests.unit.market_fixtures import (
    fresh_structlog,  # noqa: F401  (autouse)
    shared_market,
)
from trading_core.config.models import DataSection, EngineConfig
from trading_core.errors import DataSourceError
from trading_core.market.ccxt_source import CcxtSource
from trading_core.market.fetch import fetch_to_store
from trading_core.market.parquet_store import ParquetSource, ParquetStore
from trading_core.market.source import MarketDataSource
from trading_core.market.sources import make_source
from trading_core.market.synthetic import SyntheticMarket

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def test_fetch_then_rerun_adds_no_rows(tmp_path: Path) -> None:
    market = shared_market()
    store = ParquetStore(tmp_path)
    since, until = market.end - timedelta(days=10), market.end
    first = fetch_to_store(market, store, SYMBOLS, "1h", since=since, until=until)
    assert first.rows_added == 2 * 240
    assert [f.up_to_date for f in first.fetched] == [False, False]
    again = fetch_to_store(market, store, SYMBOLS, "1h", since=since, until=until)
    assert again.rows_added == 0 and all(f.up_to_date for f in again.fetched)
    expected = market.fetch_ohlcv("ETH/USDT", "1h", start=since, end=until)
    assert store.read("ETH/USDT", "1h").equals(expected)


def test_resume_after_newest_and_backfill_before_oldest(tmp_path: Path) -> None:
    market = shared_market()
    store = ParquetStore(tmp_path)
    end = market.end
    fetch_to_store(
        market,
        store,
        ["BTC/USDT"],
        "1h",
        since=end - timedelta(days=6),
        until=end - timedelta(days=3),
    )
    calls: list[tuple[str, int, int]] = []
    summary = fetch_to_store(
        market,
        store,
        ["BTC/USDT"],
        "1h",
        since=end - timedelta(days=9),
        until=end,
        progress=lambda s, done, total: calls.append((s, done, total)),
    )
    assert summary.rows_added == 6 * 24  # three days before, three days after
    assert calls[-1] == ("BTC/USDT", 6 * 24, 6 * 24)
    stored = store.read("BTC/USDT", "1h")
    assert stored.equals(
        market.fetch_ohlcv("BTC/USDT", "1h", start=end - timedelta(days=9), end=end)
    )


def test_chunks_larger_than_one_request_are_all_stored(tmp_path: Path) -> None:
    market = shared_market()
    store = ParquetStore(tmp_path)
    since = market.end - timedelta(days=100)  # 2400 bars
    summary = fetch_to_store(market, store, ["ETH/USDT"], "1h", since=since, until=market.end)
    assert summary.rows_added == 2400


def test_failing_symbol_raises_or_is_recorded(tmp_path: Path) -> None:
    market = shared_market()
    store = ParquetStore(tmp_path)
    since = market.end - timedelta(days=1)
    with pytest.raises(DataSourceError, match="NOPE/USDT"):
        fetch_to_store(market, store, ["NOPE/USDT"], "1h", since=since, until=market.end)
    summary = fetch_to_store(
        market,
        store,
        ["NOPE/USDT", "BTC/USDT"],
        "1h",
        since=since,
        until=market.end,
        on_error="skip",
    )
    assert (
        list(summary.failed) == ["NOPE/USDT"] and "DataSourceError" in summary.failed["NOPE/USDT"]
    )
    assert summary.rows_added == 24


@pytest.mark.parametrize(
    ("source", "kind"),
    [("synthetic", SyntheticMarket), ("parquet", ParquetSource), ("ccxt", CcxtSource)],
)
def test_make_source_picks_by_config(source: str, kind: type, tmp_path: Path) -> None:
    config = EngineConfig(data=DataSection(source=source))
    made = make_source(config, store_root=tmp_path)
    assert isinstance(made, kind)
    assert isinstance(made, MarketDataSource)
