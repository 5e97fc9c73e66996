"""The learned engine's model: an XGBoost regressor of the forward return (bps).

Deterministic: fixed ``seed``, fixed ``nthread``, ``hist`` tree method, and row/column sampling
driven by the seed only. Saved in XGBoost's own UBJ format (``Booster.save_raw("ubj")``), never
pickled. ``device`` is ``"cpu"`` or ``"cuda"``; the CUDA path is the same call with
``device="cuda"`` (XGBoost >= 2), used when the cluster plan found GPUs.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from trading_core.config.models import ModelSection
from trading_core.errors import TrainingError

if TYPE_CHECKING:  # xgboost is imported where a model is trained, loaded or predicted: a
    # module-level import costs every process that merely imports the training package (each
    # Dagster step, the command line) ~1.5 s, as xgboost pulls in sklearn and pandas
    import xgboost as xgb

FloatArray = npt.NDArray[np.float64]
MODEL_FORMAT = "ubj"


@dataclass(frozen=True, slots=True)
class FittedModel:
    """A trained booster's bytes plus what is needed to use and audit it."""

    artifact: bytes
    params: dict[str, Any]
    feature_names: tuple[str, ...]
    n_train_rows: int
    train_rmse_bps: float

    def __post_init__(self) -> None:
        if not self.artifact:
            raise TrainingError("a fitted model must carry its artifact bytes")
        if self.n_train_rows < 1:
            raise TrainingError(f"n_train_rows={self.n_train_rows} must be >= 1")


def xgb_params(section: ModelSection, *, device: Literal["cpu", "cuda"]) -> dict[str, Any]:
    """The booster parameters (everything that changes the model is here)."""
    return {
        "objective": "reg:pseudohubererror",
        "huber_slope": 50.0,  # bps: robust to the heavy tails of crypto returns
        "eval_metric": "rmse",
        "tree_method": "hist",
        "device": device,
        "max_depth": section.max_depth,
        "eta": section.learning_rate,
        "subsample": section.subsample,
        "colsample_bytree": section.colsample_bytree,
        "min_child_weight": section.min_child_weight,
        "max_bin": section.max_bin,
        "seed": section.seed,
        "nthread": section.nthread,
        "verbosity": 0,
    }


def fit_forward_return_model(
    features: npt.NDArray[np.floating[Any]],
    target_bps: FloatArray,
    feature_names: tuple[str, ...],
    section: ModelSection,
    *,
    device: Literal["cpu", "cuda"] = "cpu",
) -> FittedModel:
    """Fit the regressor; rows with a NaN target are a caller bug and are refused."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    y = np.asarray(target_bps, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[1] != len(feature_names):
        raise TrainingError(
            f"feature matrix {x.shape} does not match target {y.shape} and "
            f"{len(feature_names)} feature names"
        )
    if not np.all(np.isfinite(y)):
        raise TrainingError(f"target has {int(np.sum(~np.isfinite(y)))} non-finite values")
    params = xgb_params(section, device=device)
    # No feature names in the DMatrix: XGBoost re-validates them on every boosting round (~40%
    # of a small fit). The Brain Library keeps the feature list; predict_bps checks the width.
    import xgboost as xgb

    dtrain = xgb.DMatrix(x, label=y, nthread=section.nthread)
    booster = xgb.train(params, dtrain, num_boost_round=section.n_estimators)
    pred = booster.predict(dtrain)
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    return FittedModel(
        artifact=bytes(booster.save_raw(raw_format=MODEL_FORMAT)),
        params={**params, "num_boost_round": section.n_estimators},
        feature_names=feature_names,
        n_train_rows=int(x.shape[0]),
        train_rmse_bps=rmse,
    )


def load_booster(artifact: bytes, *, nthread: int = 1) -> "xgb.Booster":
    """A booster from its UBJ (or JSON) bytes; unreadable bytes raise TrainingError."""
    import xgboost as xgb

    booster = xgb.Booster(params={"nthread": nthread})
    try:
        booster.load_model(bytearray(artifact))
    except xgb.core.XGBoostError as exc:
        raise TrainingError(
            f"model artifact ({len(artifact)} bytes) is not readable: {exc}"
        ) from exc
    return booster


def predict_bps(
    booster: "xgb.Booster",
    features: npt.NDArray[np.floating[Any]],
    feature_names: tuple[str, ...],
) -> FloatArray:
    """Predicted forward return in bps per row."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != len(feature_names) or x.shape[1] != booster.num_features():
        raise TrainingError(
            f"feature matrix {x.shape} does not match the model's {booster.num_features()} "
            f"features ({len(feature_names)} names given)"
        )
    import xgboost as xgb

    dmat = xgb.DMatrix(x)
    return np.asarray(booster.predict(dmat), dtype=np.float64)


def params_fingerprint(params: dict[str, Any], feature_names: tuple[str, ...]) -> str:
    """A stable hash of everything that defines a model besides its data."""
    payload = json.dumps({"params": params, "features": list(feature_names)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
