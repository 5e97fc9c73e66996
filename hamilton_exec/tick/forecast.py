"""The learned engine's forecasts for a tick's coins, all coins in one kernel call.

Each coin has its own model per regime, so XGBoost would be called once per coin per bar at
~0.25 ms a call. When a release is swapped in, :class:`ReleaseForests` flattens every production
booster once (:mod:`trading_core.training.forest`, bit-identical predictions); a tick then
predicts every coin's row with one ``predict_forests`` call. A booster the flattening does not
support (or a release whose forests are not built) is predicted with ``predict_bps`` as before.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hamilton_exec.tick.newest_bars import NewestBars
from hamilton_exec.tick.served_release import CoinModels, ServedRelease
from trading_core.engines import ML_INPUT_COLUMNS
from trading_core.errors import TrainingError
from trading_core.observability.logging import get_logger
from trading_core.training.forest import FlatForest, flatten_booster, predict_forests, stack_forests
from trading_core.training.model import predict_bps

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ReleaseForests:
    """The flattened production boosters of one release: ``index`` maps ``id(booster)`` to its
    forest in ``forest`` (the release keeps the boosters alive, so the ids stay theirs)."""

    release_id: int
    forest: FlatForest | None
    index: Mapping[int, int]

    @classmethod
    def build(cls, served: ServedRelease) -> "ReleaseForests":
        forests: list[FlatForest] = []
        index: dict[int, int] = {}
        unsupported = 0
        for models in served.production.values():
            if models.predictor is None:
                continue
            for booster in models.predictor.boosters.values():
                if id(booster) in index:
                    continue
                try:
                    forests.append(flatten_booster(booster))
                except TrainingError:
                    unsupported += 1  # predicted by XGBoost itself, as before
                    continue
                index[id(booster)] = len(forests) - 1
        if unsupported:
            get_logger("hamilton").warning(
                "forests_unsupported", release_id=served.id, boosters=unsupported
            )
        return cls(served.id, stack_forests(forests) if forests else None, index)


def newest_forecasts(
    batch: NewestBars, models: Sequence[CoinModels], forests: ReleaseForests | None = None
) -> FloatArray:
    """The learned engine's forecast of each row: its coin's model of the row's regime (NaN
    without one). Rows whose booster is in ``forests`` go through one kernel call; the others
    through ``predict_bps``, rows sharing a booster in one call (a row's prediction does not
    depend on the other rows)."""
    out = np.full(len(batch), np.nan)
    flat_rows: list[int] = []
    flat_index: list[int] = []
    groups: dict[int, tuple[Any, list[int]]] = {}
    for i, coin_models in enumerate(models):
        predictor = coin_models.predictor
        if predictor is None:
            continue
        if tuple(predictor.feature_names) != ML_INPUT_COLUMNS:
            out[i] = predictor(batch.ml_input(i))[0]
            continue
        booster = predictor.boosters.get(int(batch.regimes[i]))
        if booster is None:
            continue
        if forests is not None and id(booster) in forests.index:
            flat_rows.append(i)
            flat_index.append(forests.index[id(booster)])
        else:
            groups.setdefault(id(booster), (booster, []))[1].append(i)
    if flat_rows and forests is not None and forests.forest is not None:
        out[flat_rows] = predict_forests(forests.forest, batch.ml_matrix[flat_rows], flat_index)
    for booster, rows in groups.values():
        out[rows] = predict_bps(booster, batch.ml_matrix[rows], ML_INPUT_COLUMNS)
    return out
