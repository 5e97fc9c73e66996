"""Helpers for the Hamilton tests: a small synthetic market config and a real release.

``make_release`` trains real XGBoost models (``fit_forward_return_model``) on the synthetic
market's prepared coins, one per regime with enough labelled bars, fits the coin's serving
tables on the training history (ml_brain abstaining, as ``trading_core.training.train`` does),
registers them in the Brain Library and writes a release.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trading_core.brain import BrainLibrary, ModelKey, ModelVersion, Release
from trading_core.config.models import EngineConfig
from trading_core.consensus import ConsensusParams
from trading_core.decision.inputs import causal_reliability, engine_votes, fit_serving_tables
from trading_core.engines import ML_INPUT_COLUMNS
from trading_core.market.synthetic import SyntheticMarket
from trading_core.regime import RegimeGates
from trading_core.training.dataset import CoinFrame, prepare_coin_frame
from trading_core.training.model import fit_forward_return_model
from trading_core.types import REGIME_CODES, Regime

N_COINS = 8
DAYS = 75
TIMEFRAME = "1h"


def hamilton_config(
    tmp_path: Path, *, n_coins: int = N_COINS, days: int = DAYS, **extra: Any
) -> EngineConfig:
    """The default config on a small synthetic market, with everything under ``tmp_path``."""
    return EngineConfig.model_validate(
        hamilton_config_data(tmp_path, n_coins=n_coins, days=days, **extra)
    )


def hamilton_config_data(
    tmp_path: Path, *, n_coins: int = N_COINS, days: int = DAYS, **extra: Any
) -> dict[str, Any]:
    """The overrides of :func:`hamilton_config` as plain data (for a YAML file)."""
    data: dict[str, Any] = {
        "engine": {"active_coins": 4, "timeframes": ["1h"]},
        "data": {"synthetic": {"n_coins": n_coins, "days": days}},
        "training": {
            "model": {"n_estimators": 15, "max_depth": 3, "min_regime_bars": 150},
            "model_versioning": {
                "storage_path": str(tmp_path / "artifacts"),
                "brain_library_dsn": f"sqlite:///{tmp_path / 'brain.db'}",
            },
        },
        "hamilton": {"state_path": str(tmp_path / "state"), "release_poll_interval_s": 0.05},
        "observability": {"prometheus": {"port": 0}},
    }
    for section, values in extra.items():
        data[section] = {**data.get(section, {}), **values}
    return data


def market(config: EngineConfig) -> SyntheticMarket:
    return SyntheticMarket(config.data.synthetic, quote=config.engine.quote)


def full_history_symbols(source: SyntheticMarket, timeframe: str = TIMEFRAME) -> list[str]:
    """Symbols listed for the whole simulated period."""
    start = source.end - timedelta(days=source.section.days)
    expected = source.section.days * 24
    return [
        s
        for s in source.list_symbols()
        if source.fetch_ohlcv(s, timeframe, start=start, end=source.end).height == expected
    ]


def coin_frame(
    source: SyntheticMarket, config: EngineConfig, symbol: str, *, start: datetime, end: datetime
) -> CoinFrame:
    bars = source.fetch_ohlcv(symbol, TIMEFRAME, start=start, end=end)
    btc = source.fetch_ohlcv("BTC/USDT", TIMEFRAME, start=start, end=end)
    funding = source.funding_rates(symbol, start=start, end=end)
    return prepare_coin_frame(
        symbol,
        TIMEFRAME,
        bars,
        detection=config.regime_gates.detection,
        label_horizon_bars=config.training.model.label_horizon_bars,
        btc_bars=btc,
        funding=funding if funding.height else None,
        ml_scale_bps=config.consensus.ml_scale_bps,
    )


def tables_payload(frame: CoinFrame, config: EngineConfig) -> dict[str, Any]:
    params = ConsensusParams.from_config(config.consensus)
    horizon = config.training.model.label_horizon_bars
    zeros = np.zeros(frame.n_bars)
    votes = engine_votes(frame, zeros, zeros, RegimeGates.from_config(config.regime_gates))
    reliability = causal_reliability(frame, votes, params, horizon)
    rows = np.flatnonzero(frame.warm & np.isfinite(frame.label_bps))
    return fit_serving_tables(frame, votes, reliability, rows, params, horizon).to_payload()


def train_models(
    library: BrainLibrary,
    config: EngineConfig,
    source: SyntheticMarket,
    symbols: Sequence[str],
    *,
    train_end: datetime,
    train_days: int = 50,
    tag: str = "v",
    seed: int = 42,
) -> list[ModelVersion]:
    """Register one model per (coin, regime) with enough labelled bars before ``train_end``."""
    section = config.training.model.model_copy(update={"seed": seed})
    registered = []
    for symbol in symbols:
        frame = coin_frame(
            source, config, symbol, start=train_end - timedelta(days=train_days), end=train_end
        )
        tables = tables_payload(frame, config)
        for regime in (Regime.TREND, Regime.RANGE, Regime.PANIC):
            rows = np.flatnonzero(frame.trainable(REGIME_CODES[regime]))
            if rows.size < section.min_regime_bars:
                continue
            fitted = fit_forward_return_model(
                frame.features[rows], frame.label_bps[rows], frame.feature_names, section
            )
            version = library.register_model(
                ModelKey(symbol.split("/")[0], regime.value, TIMEFRAME),
                fitted.artifact,
                metrics={"sharpe": 1.0, "fit_s": 0.1, "train_rmse_bps": fitted.train_rmse_bps},
                params=fitted.params,
                feature_list=list(ML_INPUT_COLUMNS),
                data_hash=f"{frame.data_hash}-{tag}-{seed}",
                partition_date=train_end.date(),
                created_at=train_end,
            )
            library.record_validation(
                version.name, metrics={}, validation={"eligible": True}, serving_tables=tables
            )
            registered.append(library.get_model(version.name))
    return registered


def make_release(
    library: BrainLibrary,
    config: EngineConfig,
    source: SyntheticMarket,
    symbols: Sequence[str],
    *,
    train_end: datetime,
    tag: str = "v",
    seed: int = 42,
    shadow: Sequence[ModelVersion] = (),
) -> Release:
    models = train_models(library, config, source, symbols, train_end=train_end, tag=tag, seed=seed)
    return library.create_release(
        train_end.date() if not shadow else date(2030, 1, 1),
        production=[m.name for m in models],
        shadow=[m.name for m in shadow],
        created_by="tests",
        note=f"hamilton test release {tag}",
    )


def corrupt_artifact(library: BrainLibrary, model: ModelVersion) -> Path:
    """Flip one byte of the model's stored artifact (its sha256 no longer matches)."""
    path = library.artifacts.path_for(model.artifact_sha256)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    return path


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def bars_frame(
    source: SyntheticMarket, symbol: str, start: datetime, end: datetime
) -> pl.DataFrame:
    return source.fetch_ohlcv(symbol, TIMEFRAME, start=start, end=end)
