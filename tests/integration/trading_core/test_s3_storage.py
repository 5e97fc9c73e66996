"""Candles and model artifacts on a real S3-compatible server (moto_server, tests/integration/
s3_server.py): the stores over s3://, then the daily DAG writing to the bucket and another
process, in an empty folder with only the environment, reading candles and loading the release.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from engine_assets.definitions import DAILY_ASSETS, build_resources, defs
from tests.integration.dagster_fixtures import engine_env
from tests.integration.s3_server import S3Bucket
from tests.unit.market_fixtures import require_real_data
from trading_core.brain import ArtifactStore, BrainLibrary
from trading_core.config import load_config
from trading_core.errors import ArtifactIntegrityError, ArtifactNotFoundError, CorruptDataFileError
from trading_core.market.parquet_store import ParquetSource, ParquetStore

DAG_PARTITION = "2026-10-31"  # the synthetic market's (test_training_dag.py)
AS_OF = datetime.fromisoformat("2021-07-17T00:00:00+00:00")  # inside the real candles


def _real_bars(coin: str, days: int) -> pl.DataFrame:
    frame = pl.read_parquet(require_real_data() / f"{coin}_USDT-1h.parquet")
    return frame.filter(
        pl.col("timestamp").is_between(AS_OF - timedelta(days=days), AS_OF, closed="left")
    )


def test_parquet_store_on_s3_round_trip_list_and_span(s3_bucket: S3Bucket) -> None:
    store = ParquetStore(s3_bucket.url("ohlcv"))
    assert store.list_symbols("1h") == [] and store.read("BTC/USDT", "1h").height == 0
    bars = _real_bars("BTC", days=30)
    assert store.write("BTC/USDT", "1h", bars[:-24]) == bars.height - 24
    assert store.append("BTC/USDT", "1h", bars) == 24  # one more PUT of the whole object
    store.write_funding("BTC/USDT", pl.DataFrame({"timestamp": [AS_OF], "funding_rate": [1e-4]}))
    assert s3_bucket.keys("ohlcv/") == [
        "ohlcv/BTC_USDT-1h.parquet",
        "ohlcv/BTC_USDT-8h-funding_rate.parquet",
    ]
    # another reader (a fresh store object) sees the same candles
    reader = ParquetStore(s3_bucket.url("ohlcv"))
    assert reader.list_symbols("1h") == ["BTC/USDT"] and reader.exists("BTC/USDT", "1h")
    assert reader.read("BTC/USDT", "1h").equals(store.read("BTC/USDT", "1h"))
    assert reader.read("BTC/USDT", "1h").height == bars.height
    assert reader.time_span("BTC/USDT", "1h") == (bars["timestamp"][0], bars["timestamp"][-1])
    assert reader.read_funding("BTC/USDT")["funding_rate"].to_list() == [1e-4]
    week = reader.read_clean("BTC/USDT", "1h", AS_OF - timedelta(days=7), AS_OF).frame
    assert week.height == bars.filter(pl.col("timestamp") >= AS_OF - timedelta(days=7)).height
    snapshot = ParquetSource(reader).universe_snapshot(AS_OF)
    assert snapshot["symbol"].to_list() == ["BTC/USDT"]


def test_corrupt_object_on_s3_raises_corrupt_error_naming_url(s3_bucket: S3Bucket) -> None:
    store = ParquetStore(s3_bucket.url("ohlcv"))
    store.write("ETH/USDT", "1h", _real_bars("ETH", days=10))
    s3_bucket.put("ohlcv/BAD_USDT-1h.parquet", b"this is not a parquet file" * 8)
    url = f"{s3_bucket.url('ohlcv')}/BAD_USDT-1h.parquet"
    with pytest.raises(CorruptDataFileError) as info:
        store.read("BAD/USDT", "1h")
    assert info.value.path == url and url in str(info.value)
    # the ranking skips it and reports it, as it does with a local corrupt file
    snapshot, quality = ParquetSource(store).universe_snapshot_with_quality(AS_OF)
    assert snapshot["symbol"].to_list() == ["ETH/USDT"] and quality.corrupt_files == (url,)


def test_artifact_store_on_s3_write_once_and_flipped_byte_detected(s3_bucket: S3Bucket) -> None:
    store = ArtifactStore(s3_bucket.url("artifacts"))
    payload = b"{U\x04trees[...]}" * 100
    ref = store.put(payload)
    key = f"artifacts/{ref.sha256[:2]}/{ref.sha256[2:]}"
    assert ref.uri == f"s3://{s3_bucket.name}/{key}" and s3_bucket.keys() == [key]
    assert s3_bucket.get(key) == payload and store.put(payload) == ref
    assert ArtifactStore(s3_bucket.url("artifacts")).load(ref.sha256) == payload
    damaged = bytearray(payload)
    damaged[7] ^= 0x01
    s3_bucket.put(key, bytes(damaged))
    with pytest.raises(ArtifactIntegrityError, match=ref.sha256):
        store.load(ref.sha256)
    with pytest.raises(ArtifactIntegrityError):
        store.put(payload)  # never overwrites a damaged copy
    assert s3_bucket.get(key) == bytes(damaged)
    with pytest.raises(ArtifactNotFoundError):
        store.load("0" * 64)


# --- end to end ---------------------------------------------------------------------------------

READER = r"""
import json, sys
from datetime import UTC, datetime
from pathlib import Path

from hamilton_exec.tick.served_release import load_release
from trading_core.brain import BrainLibrary
from trading_core.config import load_config
from trading_core.market.parquet_store import ParquetStore
from trading_core.regime import RegimeGates

assert not any(Path.cwd().iterdir()), "the reader must start in an empty folder"
config = load_config()
store = ParquetStore(config.data.store_path, endpoint_url=config.storage.endpoint_url)
symbols = store.list_symbols("1h")
rows = {s: store.read_clean(s, "1h").frame.height for s in symbols}
library = BrainLibrary.from_config(config)
release = library.latest_release()
verified = {m.name: len(library.load_artifact(m)) for m in library.release_models(release.id)}
served = load_release(
    library, release, timeframe="1h",
    base_gates=RegimeGates.from_config(config.regime_gates), loaded_at=datetime.now(UTC),
)
json.dump({"rows": rows, "release": release.id, "verified": verified,
           "production": sorted(served.production), "uris": [
               m.artifact_uri for m in library.release_models(release.id)]}, sys.stdout)
"""


@pytest.fixture
def s3_engine(
    tmp_path: Path, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The engine's candles and artifacts in the bucket; the Brain Library DB stays SQLite.

    The market is the synthetic one of test_training_dag.py (3 coins with planted structure):
    its ohlcv asset writes the candles into the bucket, and its models pass the promotion gate,
    so there is a release to load. (The real candles of shared/data carry no edge the gate
    confirms at this size: no release; they serve the store tests above.)"""
    env = {
        **engine_env(tmp_path),
        "ENGINE__DATA__STORE_PATH": s3_bucket.url("ohlcv"),
        "ENGINE__TRAINING__MODEL_VERSIONING__STORAGE_PATH": s3_bucket.url("artifacts"),
        "ENGINE__DATA__SYNTHETIC__STRUCTURE_STRENGTH": "3",
        "ENGINE__ENGINE__ACTIVE_COINS": "3",
        "ENGINE__ENGINE__TIMEFRAMES": "[1h]",
        "ENGINE__DATA__SYNTHETIC__N_COINS": "60",
        "ENGINE__TRAINING__DISTRIBUTED__NUM_WORKERS": "2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield {**env, **s3_bucket.server.env()}


@pytest.mark.slow
def test_daily_dag_on_s3_then_other_process_reads_candles_and_loads_release(
    s3_engine: dict[str, str], s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*DAILY_ASSETS, *(defs.asset_checks or [])],
            partition_key=DAG_PARTITION,
            # process workers: each reads its candles from the bucket through its own
            # environment, as a worker on another host would (+~13 s over threads)
            resources=build_resources(dask_processes=True),
            instance=instance,
        )
        assert result.success
    library = BrainLibrary.from_config(load_config())
    models = library.list_models()
    assert models, "no model registered"
    artifact_keys = set(s3_bucket.keys("artifacts/"))
    for model in models:
        key = f"artifacts/{model.artifact_sha256[:2]}/{model.artifact_sha256[2:]}"
        assert model.artifact_uri == f"s3://{s3_bucket.name}/{key}" and key in artifact_keys
    candle_keys = s3_bucket.keys("ohlcv/")
    active = sorted({m.key.coin for m in models})
    assert len(active) >= 3 and {f"ohlcv/{c}_USDT-1h.parquet" for c in active} <= set(candle_keys)
    assert f"ohlcv/_universe/{DAG_PARTITION}.parquet" in candle_keys
    # nothing of the stores lands locally (an s3:// URL taken for a path would make "s3:/...")
    assert not list(tmp_path.glob("**/*.parquet")) and not Path("s3:").exists()
    release = library.latest_release()
    assert release is not None, "the promotion gate passed no model: nothing released"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGINE__", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "-c", READER],
        cwd=elsewhere,
        env={**env, **s3_engine},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["release"] == release.id
    assert set(report["rows"]) >= {f"{c}/USDT" for c in active}
    assert all(n >= 24 * 300 for n in report["rows"].values())  # history_days 365
    released = library.release_models(release.id)
    assert report["verified"] == {m.name: m.artifact_size_bytes for m in released}
    assert report["production"] == sorted({m.key.coin for m in released if m.role == "production"})
    assert all(uri.startswith(f"s3://{s3_bucket.name}/artifacts/") for uri in report["uris"])
