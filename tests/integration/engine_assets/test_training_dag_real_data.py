"""The daily DAG on real Binance candles (parquet source) for 12 coins."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from engine_assets.definitions import DAILY_ASSETS, build_resources, defs
from tests.integration.dagster_fixtures import engine_env
from tests.unit.market_fixtures import require_real_data
from trading_core.brain import BrainLibrary
from trading_core.config import load_config

COINS = ("BTC", "ETH", "ADA", "XRP", "DOGE", "DOT", "LINK", "LTC", "BCH", "UNI", "EOS", "ETC")
PARTITION = "2021-07-16"


@pytest.fixture
def real_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    real = require_real_data()
    store = tmp_path / "ohlcv"
    store.mkdir()
    for coin in COINS:
        shutil.copy(real / f"{coin}_USDT-1h.parquet", store / f"{coin}_USDT-1h.parquet")
    env = {
        **engine_env(tmp_path),
        "ENGINE__DATA__SOURCE": "parquet",
        "ENGINE__ENGINE__ACTIVE_COINS": "10",
        "ENGINE__ENGINE__TIMEFRAMES": "[1h]",
        "ENGINE__DATA__HISTORY_DAYS": "200",
        "ENGINE__TRAINING__MODEL__N_ESTIMATORS": "30",
        "ENGINE__VALIDATION__WALK_FORWARD__MIN_TEST_TRADES": "1",
        "ENGINE__VALIDATION__WALK_FORWARD__MAX_WINDOWS": "6",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield store


@pytest.mark.slow
def test_daily_dag_on_real_binance_candles(real_store: Path) -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*DAILY_ASSETS, *(defs.asset_checks or [])],
            partition_key=PARTITION,
            resources=build_resources(dask_processes=False),
            instance=instance,
        )
        assert result.success
    library = BrainLibrary.from_config(load_config())
    ranking = library.load_ranking(__import__("datetime").date(2021, 7, 16))
    assert ranking.height >= 10
    models = library.list_models()
    coins = {m.key.coin for m in models}
    assert len(coins) >= 10, coins
    assert all(m.training_data_hash for m in models)
    assert any(m.validation and m.validation.get("status") == "validated" for m in models)
