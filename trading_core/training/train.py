"""Train the final model of every regime of one coin x timeframe (the ``trained_models`` step).

A regime with fewer than ``training.model.min_regime_bars`` labelled bars is skipped with the
reason recorded, never an error. The serving tables of the coin x timeframe (correlation
divisors, information coefficients) are fitted on the whole history with ml_brain abstaining,
exactly as each walk-forward window fits them on its training span.
"""

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from trading_core.consensus import ConsensusParams
from trading_core.decision.inputs import (
    causal_reliability,
    engine_votes,
    fit_serving_tables,
)
from trading_core.regime import RegimeGates
from trading_core.training.dataset import CoinFrame
from trading_core.training.jobs import CoinJob, load_coin_frame
from trading_core.training.model import FittedModel, fit_forward_return_model
from trading_core.types import REGIME_CODES, Regime


@dataclass(frozen=True)
class KeyTraining:
    """The outcome of one coin x regime x timeframe."""

    coin: str
    regime: str
    timeframe: str
    status: Literal["trained", "skipped"]
    reason: str
    n_rows: int
    fit_s: float
    data_hash: str
    model: FittedModel | None = None
    serving_tables: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return f"{self.coin}_{self.regime}_{self.timeframe}"


def train_coin(job: CoinJob) -> list[KeyTraining]:
    """Worker entry point: load, prepare once, train each regime."""
    frame = load_coin_frame(job)
    tables = serving_tables_for(frame, job)
    return [_train_regime(frame, job, Regime(name), tables) for name in job.regimes]


def serving_tables_for(frame: CoinFrame, job: CoinJob) -> dict[str, Any]:
    config = job.config
    params = ConsensusParams.from_config(config.consensus)
    horizon = config.training.model.label_horizon_bars
    zeros = np.zeros(frame.n_bars)
    votes = engine_votes(frame, zeros, zeros, RegimeGates.from_config(config.regime_gates))
    reliability = causal_reliability(frame, votes, params, horizon)
    rows = np.flatnonzero(frame.warm & np.isfinite(frame.label_bps))
    if rows.size < 2:
        rows = np.flatnonzero(frame.warm)
    if rows.size < 2:
        return {}
    return fit_serving_tables(frame, votes, reliability, rows, params, horizon).to_payload()


def _train_regime(
    frame: CoinFrame, job: CoinJob, regime: Regime, tables: dict[str, Any]
) -> KeyTraining:
    section = job.config.training.model
    rows = np.flatnonzero(frame.trainable(REGIME_CODES[regime]))
    if rows.size < section.min_regime_bars:
        return KeyTraining(
            job.coin,
            regime.value,
            job.timeframe,
            n_rows=int(rows.size),
            data_hash=frame.data_hash,
            status="skipped",
            reason=f"{rows.size} labelled {regime.value} bars < min_regime_bars "
            f"{section.min_regime_bars}",
            fit_s=0.0,
        )
    started = time.perf_counter()
    model = fit_forward_return_model(
        frame.features[rows],
        frame.label_bps[rows],
        frame.feature_names,
        section,
        device=job.device,
    )
    return KeyTraining(
        job.coin,
        regime.value,
        job.timeframe,
        n_rows=int(rows.size),
        data_hash=frame.data_hash,
        status="trained",
        reason=f"trained on {rows.size} {regime.value} bars",
        fit_s=time.perf_counter() - started,
        model=model,
        serving_tables=tables,
    )
