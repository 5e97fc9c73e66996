"""Flattened XGBoost forests predict exactly what Booster.predict gives (bit for bit)."""

import numpy as np
import pytest
import xgboost as xgb

from trading_core.config.models import ModelSection
from trading_core.errors import TrainingError
from trading_core.training.forest import flatten_booster, predict_forests, stack_forests
from trading_core.training.model import fit_forward_return_model, load_booster, predict_bps

N_FEATURES = 12
NAMES = tuple(f"f{i}" for i in range(N_FEATURES))


def trained(seed: int, depth: int, trees: int = 40) -> xgb.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1500, N_FEATURES)).astype(np.float32)
    y = 30 * x[:, 0] + 10 * x[:, 1] * x[:, 2] + 20 * rng.standard_t(3, 1500)
    x[rng.random(x.shape) < 0.1] = np.nan
    section = ModelSection(n_estimators=trees, max_depth=depth, seed=seed)
    return load_booster(fit_forward_return_model(x, y, NAMES, section).artifact)


@pytest.fixture(scope="module")
def boosters() -> list[xgb.Booster]:
    return [trained(seed, depth) for seed, depth in ((1, 2), (2, 4), (3, 6))]


def test_stacked_forests_predict_each_row_exactly_as_its_booster(
    boosters: list[xgb.Booster],
) -> None:
    forest = stack_forests([flatten_booster(b) for b in boosters])
    rng = np.random.default_rng(9)
    x = rng.normal(scale=2.0, size=(3000, N_FEATURES)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:50] = np.nan  # every split takes its default direction
    index = rng.integers(-1, len(boosters), x.shape[0])
    predicted = predict_forests(forest, x, index)
    assert np.isnan(predicted[index == -1]).all()
    for f, booster in enumerate(boosters):
        rows = np.flatnonzero(index == f)
        np.testing.assert_array_equal(predicted[rows], predict_bps(booster, x[rows], NAMES))


def test_a_logistic_model_is_refused(boosters: list[xgb.Booster]) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, N_FEATURES))
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2},
        xgb.DMatrix(x, label=(x[:, 0] > 0).astype(float)),
        3,
    )
    with pytest.raises(TrainingError, match="binary:logistic"):
        flatten_booster(booster)


def test_rows_or_indices_that_do_not_fit_are_refused(boosters: list[xgb.Booster]) -> None:
    forest = flatten_booster(boosters[0])
    with pytest.raises(ValueError, match="n_rows"):
        predict_forests(forest, np.ones((2, N_FEATURES + 1)), [0, 0])
    with pytest.raises(ValueError, match="forest indices"):
        predict_forests(forest, np.ones((2, N_FEATURES)), [0, 1])
