"""XGBoost wrapper: determinism, UBJ round trip, learning a planted relation, bad input."""

import numpy as np
import pytest

from trading_core.config.models import ModelSection
from trading_core.errors import TrainingError
from trading_core.training.model import (
    fit_forward_return_model,
    load_booster,
    params_fingerprint,
    predict_bps,
    xgb_params,
)

NAMES = ("a", "b", "c")


def _data(seed: int = 0, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = 40.0 * x[:, 0] - 20.0 * (x[:, 1] > 0) + rng.normal(scale=5.0, size=n)
    return x, y


def test_same_seed_same_data_identical_bytes() -> None:
    x, y = _data()
    a = fit_forward_return_model(x, y, NAMES, ModelSection())
    b = fit_forward_return_model(x, y, NAMES, ModelSection())
    assert a.artifact == b.artifact


def test_different_seed_different_model() -> None:
    x, y = _data()
    a = fit_forward_return_model(x, y, NAMES, ModelSection(seed=1))
    b = fit_forward_return_model(x, y, NAMES, ModelSection(seed=2))
    assert a.artifact != b.artifact


def test_model_learns_planted_relation_out_of_sample() -> None:
    x, y = _data(seed=0)
    model = fit_forward_return_model(x, y, NAMES, ModelSection(n_estimators=200, learning_rate=0.1))
    x_test, y_test = _data(seed=1)
    pred = predict_bps(load_booster(model.artifact), x_test, NAMES)
    assert np.corrcoef(pred, y_test)[0, 1] > 0.9


def test_ubj_round_trip_predicts_identically() -> None:
    x, y = _data()
    model = fit_forward_return_model(x, y, NAMES, ModelSection())
    p1 = predict_bps(load_booster(model.artifact), x, NAMES)
    p2 = predict_bps(load_booster(bytes(model.artifact)), x, NAMES)
    np.testing.assert_array_equal(p1, p2)
    assert model.artifact[:1] == b"{"  # UBJ object marker, not a pickle


def test_unreadable_artifact_raises_training_error() -> None:
    with pytest.raises(TrainingError, match="not readable"):
        load_booster(b"definitely not a model")


def test_nan_target_refused() -> None:
    x, y = _data(n=100)
    y[5] = np.nan
    with pytest.raises(TrainingError, match="non-finite"):
        fit_forward_return_model(x, y, NAMES, ModelSection())


def test_shape_mismatch_refused() -> None:
    x, y = _data(n=100)
    with pytest.raises(TrainingError, match="does not match"):
        fit_forward_return_model(x, y[:50], NAMES, ModelSection())


def test_cuda_params_switch_device_only() -> None:
    cpu = xgb_params(ModelSection(), device="cpu")
    cuda = xgb_params(ModelSection(), device="cuda")
    assert {k for k in cpu if cpu[k] != cuda[k]} == {"device"}
    assert params_fingerprint(cpu, NAMES) != params_fingerprint(cuda, NAMES)
