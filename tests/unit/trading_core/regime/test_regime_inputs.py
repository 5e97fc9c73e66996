"""The regime detector's raw inputs: every declared input's kernel row (the batch path) equals
its newest-bar function (the incremental path) on every bar, and is defined from exactly its
declared warm-up; the warm-ups the detector and the incremental path use derive from them."""

from functools import cache

import numpy as np
import numpy.typing as npt
import pytest

from trading_core.config.models import RegimeDetectionSection
from trading_core.regime import kernels, raw_warmup_bars
from trading_core.regime.incremental import tail_bars
from trading_core.regime.inputs import (
    N_INPUTS,
    RAW_INPUTS,
    RawInput,
    RegimeWindows,
    newest_inputs,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
DETECTIONS = {
    "default": RegimeDetectionSection(),
    "short": RegimeDetectionSection(
        lookback_bars=7, vol_window_bars=5, dollar_volume_window_bars=3, percentile_window_bars=50
    ),
}
BY_INPUT = pytest.mark.parametrize("raw_input", RAW_INPUTS, ids=[i.name for i in RAW_INPUTS])
BY_DETECTION = pytest.mark.parametrize("config", sorted(DETECTIONS))


def _walk(n_bars: int, seed: int) -> tuple[FloatArray, FloatArray]:
    """Close and volume with a flat start (0 / 0 efficiency) and zero volumes. (A flat run
    after moves is a known deviation: the kernel keeps polars' rounding residue, the numpy
    path the exact 0; tests/unit/trading_core/regime/test_lastbar_regime.py covers the labels
    there.)"""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.01, n_bars)
    steps[:60] = 0.0
    close = 30.0 * np.exp(np.cumsum(steps))
    volume = rng.lognormal(3.0, 1.0, n_bars)
    volume[rng.random(n_bars) < 0.05] = 0.0
    return close, volume


@cache
def _batch(config: str) -> tuple[FloatArray, BoolArray]:
    close, volume = _walk(900, 7)
    detection = DETECTIONS[config]
    values, valid = np.empty((N_INPUTS, close.size)), np.empty((N_INPUTS, close.size), bool)
    kernels.bar_inputs(
        close, np.ones(close.size, bool), close * volume, np.ones(close.size, bool),
        np.array([0, close.size]), detection.vol_window_bars,
        detection.dollar_volume_window_bars, detection.lookback_bars, values, valid,
    )  # fmt: skip
    return values, valid


@cache
def _incremental(config: str) -> dict[str, FloatArray]:
    """Each input at every bar, from NaN-padded tails of ``tail_bars`` bars."""
    close, volume = _walk(900, 7)
    k = tail_bars(DETECTIONS[config])
    pad = np.full(k - 1, np.nan)
    close_tails, volume_tails = (
        np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(np.r_[pad, x], k))
        for x in (close, volume)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return newest_inputs(close_tails, volume_tails, RegimeWindows.of(DETECTIONS[config]))


def test_inputs_declare_each_kernel_row_once() -> None:
    assert sorted(i.row for i in RAW_INPUTS) == list(range(N_INPUTS))
    assert len({i.name for i in RAW_INPUTS}) == N_INPUTS


@BY_DETECTION
def test_raw_warmup_is_the_longest_input_reach_of_the_rules(config: str) -> None:
    detection = DETECTIONS[config]
    windows = RegimeWindows.of(detection)
    vw, dvw, pw = windows.vol, windows.dollar_volume, windows.percentile
    expected = max(vw + pw - 1, dvw + pw - 2, detection.lookback_bars, vw + 1)
    assert raw_warmup_bars(detection, vol_window_bars=vw, dollar_volume_window_bars=dvw) == (
        expected
    )
    assert tail_bars(detection) == max(vw + 1, dvw, detection.lookback_bars + 1) + 1


@BY_INPUT
@BY_DETECTION
def test_kernel_row_is_defined_from_exactly_the_declared_warmup(
    raw_input: RawInput, config: str
) -> None:
    _, valid = _batch(config)
    warm = raw_input.warmup(RegimeWindows.of(DETECTIONS[config]))
    assert not valid[raw_input.row, :warm].any()
    assert valid[raw_input.row, warm:].all()


@BY_INPUT
@BY_DETECTION
def test_newest_bar_function_equals_the_kernel_row(raw_input: RawInput, config: str) -> None:
    values, _ = _batch(config)
    warm = raw_input.warmup(RegimeWindows.of(DETECTIONS[config]))
    newest = _incremental(config)[raw_input.name]
    assert np.isfinite(newest[warm:]).all()
    np.testing.assert_allclose(newest[warm:], values[raw_input.row, warm:], rtol=1e-9, atol=1e-12)
