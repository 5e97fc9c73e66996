"""The learned engine's predictor: one model per regime of a coin x timeframe.

It is the ``EngineContext.ml_predictor`` both the walk-forward simulation and Hamilton use:
given the ML input frame (features + rule signals + a ``regime`` column of codes), each row is
predicted by the model of its regime; rows of a regime without a model get NaN, which the
``ml_brain`` engine turns into an abstention.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.engines import ML_INPUT_COLUMNS
from trading_core.training.model import predict_bps

if TYPE_CHECKING:  # only annotations: see trading_core.training.model
    import xgboost as xgb

FloatArray = npt.NDArray[np.float64]
REGIME_COLUMN = "regime"


@dataclass(frozen=True)
class RegimeModelPredictor:
    """``boosters`` maps a regime code to its booster (all trained on ML_INPUT_COLUMNS)."""

    boosters: Mapping[int, "xgb.Booster"]
    feature_names: tuple[str, ...] = ML_INPUT_COLUMNS
    _empty: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_empty", not self.boosters)

    def __call__(self, frame: pl.DataFrame) -> FloatArray:
        if REGIME_COLUMN not in frame.columns:
            raise ValueError(
                f"the ML input frame needs a {REGIME_COLUMN!r} column of regime codes to pick "
                "each row's model"
            )
        out = np.full(frame.height, np.nan)
        if self._empty or frame.height == 0:
            return out
        regimes = frame[REGIME_COLUMN].to_numpy()
        matrix = frame.select(self.feature_names).to_numpy().astype(np.float32)
        for code, booster in self.boosters.items():
            rows = np.flatnonzero(regimes == code)
            if rows.size:
                out[rows] = predict_bps(booster, matrix[rows], self.feature_names)
        return out
