"""Store URLs (trading_core.storage): parsing, refusal of bad schemes, joining, and the candle
store over a non-local fsspec filesystem (memory://; S3 itself: tests/integration)."""

import uuid
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from trading_core.config import load_config
from trading_core.errors import ConfigError, CorruptDataFileError, DataSourceError
from trading_core.market.parquet_store import ParquetSource, ParquetStore
from trading_core.market.quality import DataQuality
from trading_core.market.synthetic import SyntheticMarket
from trading_core.market.universe_store import (
    load_snapshot_quality,
    load_universe_snapshot,
    save_snapshot_quality,
    save_universe_snapshot,
)
from trading_core.storage import StorageLocation, parse_location


def _memory_url() -> str:
    return f"memory://engine-tests/{uuid.uuid4().hex}"


def test_plain_path_parses_local_unchanged() -> None:
    location = parse_location("data/ohlcv")
    assert location.is_local and location.local_path() == Path("data/ohlcv")
    assert location.url == Path("data/ohlcv").absolute().as_uri()


def test_file_url_parses_to_local_absolute_path() -> None:
    location = parse_location("file:///srv/engine/ohlcv%20x")
    assert location.is_local and location.local_path() == Path("/srv/engine/ohlcv x")


def test_s3_url_parses_bucket_and_prefix() -> None:
    location = parse_location("s3://bucket-a/engine/ohlcv/", endpoint_url="http://minio:9000")
    assert (location.protocol, location.path) == ("s3", "bucket-a/engine/ohlcv")
    assert not location.is_local and location.url == "s3://bucket-a/engine/ohlcv"
    assert location.endpoint_url == "http://minio:9000"
    assert location.join("ab", "cdef").url == "s3://bucket-a/engine/ohlcv/ab/cdef"


def test_path_object_and_location_pass_through() -> None:
    assert parse_location(Path("/tmp/x")) == StorageLocation("file", "/tmp/x")
    same = parse_location("s3://b1/p")
    assert parse_location(same) is same


@pytest.mark.parametrize(
    "value",
    ["gs://bucket/x", "http://host/x", "hdfs://nn/data", "S3A://bucket/x", "ftp://h/x"],
)
def test_unsupported_scheme_raises_config_error_naming_value(value: str) -> None:
    with pytest.raises(ConfigError, match="allowed schemes: file, s3, memory") as info:
        parse_location(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("s3:/bucket/x", "malformed"),
        ("s3://", "no bucket"),
        ("s3://key:secret@bucket/x", "credentials"),
        ("file://relative/dir", "absolute path"),
        ("", "empty"),
    ],
)
def test_malformed_url_raises_config_error(value: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_location(value)


def test_bad_store_scheme_in_config_names_key_and_value() -> None:
    with pytest.raises(ConfigError) as info:
        load_config([], env={"ENGINE__DATA__STORE_PATH": "gs://bucket/ohlcv"})
    message = str(info.value)
    assert "data.store_path" in message and "gs://bucket/ohlcv" in message and "s3" in message


def test_endpoint_with_credentials_in_config_refused() -> None:
    with pytest.raises(ConfigError, match=r"storage\.endpoint_url"):
        load_config([], env={"ENGINE__STORAGE__ENDPOINT_URL": "http://k:s@127.0.0.1:9000"})


def test_s3_urls_and_endpoint_in_config_accepted() -> None:
    config = load_config(
        [],
        env={
            "ENGINE__DATA__STORE_PATH": "s3://shared/ohlcv",
            "ENGINE__TRAINING__MODEL_VERSIONING__STORAGE_PATH": "s3://shared/artifacts",
            "ENGINE__STORAGE__ENDPOINT_URL": "http://127.0.0.1:9000",
        },
    )
    assert config.data.store_path == "s3://shared/ohlcv"
    assert config.storage.endpoint_url == "http://127.0.0.1:9000"


def _bars(symbol: str = "ETH/USDT", days: int = 5) -> pl.DataFrame:
    source = SyntheticMarket(load_config([]).data.synthetic, quote="USDT")
    return source.fetch_ohlcv(symbol, "1h", start=source.end - timedelta(days=days), end=source.end)


def test_memory_store_round_trip_list_and_span_remote_path() -> None:
    store = ParquetStore(_memory_url())
    assert not store.is_local and store.list_symbols("1h") == []
    bars = _bars()
    assert store.write("ETH/USDT", "1h", bars) == bars.height
    assert store.exists("ETH/USDT", "1h") and store.list_symbols("1h") == ["ETH/USDT"]
    assert store.read("ETH/USDT", "1h").equals(store.read("ETH/USDT", "1h"))
    assert store.read("ETH/USDT", "1h").height == bars.height
    first, last = bars["timestamp"][0], bars["timestamp"][-1]
    assert store.time_span("ETH/USDT", "1h") == (first, last)
    cut = bars["timestamp"][10]
    assert store.read("ETH/USDT", "1h", start=cut).height == bars.height - 10
    assert store.append("ETH/USDT", "1h", bars) == 0
    assert store.file_url("ETH/USDT", "1h").startswith("memory://engine-tests/")
    with pytest.raises(ValueError, match="not on the local filesystem"):
        store.path("ETH/USDT", "1h")


def test_memory_store_corrupt_object_names_its_url() -> None:
    store = ParquetStore(_memory_url())
    target = store.location.join("BAD_USDT-1h.parquet")
    target.filesystem().pipe_file(target.path, b"not a parquet file" * 4)
    with pytest.raises(CorruptDataFileError) as info:
        store.read("BAD/USDT", "1h")
    assert info.value.path == target.url and target.url in str(info.value)
    with pytest.raises(CorruptDataFileError):
        store.time_span("BAD/USDT", "1h")


def test_memory_store_serves_parquet_source_snapshot() -> None:
    store = ParquetStore(_memory_url())
    bars = _bars("BTC/USDT")
    store.write("BTC/USDT", "1h", bars)
    as_of = bars["timestamp"][-1] + timedelta(hours=1)
    snapshot = ParquetSource(store).universe_snapshot(as_of)
    assert snapshot["symbol"].to_list() == ["BTC/USDT"]


def test_location_fetch_put_names_on_memory_and_local(tmp_path: Path) -> None:
    remote = parse_location(_memory_url())
    file = remote.join("a", "b.bin")
    assert file.fetch() is None and not file.is_file() and remote.names() == []
    file.put(b"payload")
    assert file.fetch() == b"payload" and file.is_file() and remote.names() == ["a"]
    local = parse_location(tmp_path).join("x.bin")
    assert local.fetch() is None and parse_location(tmp_path).names() == []
    with pytest.raises(ValueError, match="atomically"):
        local.put(b"no")


def test_universe_snapshot_round_trip_on_remote_store() -> None:
    root = parse_location(_memory_url())
    day = date(2026, 10, 31)
    with pytest.raises(DataSourceError, match="no universe snapshot"):
        load_universe_snapshot(root, day)
    snapshot = pl.DataFrame({"symbol": ["BTC/USDT"], "daily_volume_usd": [1.0e9]})
    assert save_universe_snapshot(root, day, snapshot) == f"{root.url}/_universe/2026-10-31.parquet"
    assert load_universe_snapshot(root, day).equals(snapshot)
    assert load_snapshot_quality(root, day) == DataQuality()
    save_snapshot_quality(root, day, DataQuality(corrupt_files=("s3://b/x.parquet",)))
    assert load_snapshot_quality(root, day).corrupt_files == ("s3://b/x.parquet",)
