"""coin_universe -> liquidity_ranking -> ohlcv on a parquet store of real candles without BTC
and with a corrupt file: the day succeeds, the corrupt file is skipped and named in the ranking's
metadata, and the ohlcv asset says it went on without the (optional) BTC reference."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from engine_assets.definitions import defs
from tests.integration.dagster_fixtures import engine_env
from tests.unit.market_fixtures import require_real_data

COINS = ("ETH", "ADA", "XRP")
PARTITION = "2021-07-16"


@pytest.fixture
def store_without_btc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    real = require_real_data()
    store = tmp_path / "ohlcv"
    store.mkdir()
    for coin in COINS:
        shutil.copy(real / f"{coin}_USDT-1h.parquet", store / f"{coin}_USDT-1h.parquet")
    (store / "BAD_USDT-1h.parquet").write_bytes(b"truncated download" * 16)
    env = {
        **engine_env(tmp_path),
        "ENGINE__DATA__SOURCE": "parquet",
        "ENGINE__ENGINE__ACTIVE_COINS": "3",
        "ENGINE__ENGINE__TIMEFRAMES": "[1h]",
        "ENGINE__DATA__HISTORY_DAYS": "30",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield store


def test_day_without_btc_and_with_a_corrupt_file_succeeds_with_metadata(
    store_without_btc: Path,
) -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [defs.get_assets_def(n) for n in ("coin_universe", "liquidity_ranking", "ohlcv")],
            partition_key=PARTITION,
            resources=defs.resources,
            instance=instance,
        )
        assert result.success
        bad = str(store_without_btc / "BAD_USDT-1h.parquet")
        for node in ("coin_universe", "liquidity_ranking"):
            meta = result.asset_materializations_for_node(node)[0].metadata
            assert meta["corrupt_files_skipped"].value == [bad]
            assert meta["rejected_candles"].value == {}
            assert meta["rejected_candles_total"].value == 0
        ranking = result.asset_materializations_for_node("liquidity_ranking")[0].metadata
        assert ranking["ranked_coins"].value == len(COINS)
        ohlcv = result.asset_materializations_for_node("ohlcv")[0].metadata
        assert ohlcv["btc_reference"].value.startswith("skipped: BTC/USDT is not listed")
        assert sorted(ohlcv["active_coins"].value) == sorted(f"{c}/USDT" for c in COINS)
