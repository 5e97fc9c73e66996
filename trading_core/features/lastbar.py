"""Every feature's value at the newest bar of many coins at once, in numpy (no polars).

:func:`~trading_core.features.compute.compute_features` evaluates the feature expressions of
:mod:`trading_core.features.core` over a whole history; a live service needs them at one bar per
coin, and polars' fixed cost per call dominates on a few hundred bars. Here the same definitions
are evaluated at the last column of ``(n_coins, n_bars)`` arrays, one vectorised numpy step per
feature across all coins (the intermediates live in :mod:`trading_core.features.lastbar_windows`):

* trailing rolling statistics (means, sums, standard deviations, extrema, the weighted time
  correlation) are reductions over the last ``w`` columns;
* the exponential averages (``adjust=True``: Wilder's ATR and RSI, the ribbon, MACD and signal
  EMAs) are dot products with their normalised weights ``(1 - alpha)^k`` from the first bar of
  the window, which is exactly polars' adjusted EWM restricted to the window; the MACD signal
  line (an EMA of a difference of EMAs) is linear in the closes, so it is one dot product with
  a precomputed weight vector (cached per window length);
* warm-up nulls become NaN: a feature is NaN when the newest bar's position ``n_bars - 1`` is
  below its declared warm-up, as ``compute_features`` masks it.

Each feature's newest-bar function is declared with it in :mod:`trading_core.features.registry`
(the longer ones live in :mod:`trading_core.features.lastbar_formulas`).

So row ``i`` equals the last row of ``compute_features`` on the same ``n_bars`` bars of coin
``i``, up to floating-point summation order (polars sums incrementally; tests assert 1e-9
relative, observed ~1e-13). Each row depends only on its own coin's bars (every reduction runs
along a C-contiguous row), so a coin's values do not depend on which other coins share the
batch. References are those of :mod:`trading_core.features.expressions`.
"""

from typing import Final

import numpy as np
import numpy.typing as npt

from trading_core.errors import DataValidationError
from trading_core.features.lastbar_windows import NewestWindows
from trading_core.features.registry import FEATURE_COLUMNS, FEATURES

FloatArray = npt.NDArray[np.float64]
BAR_FIELDS: Final[tuple[str, ...]] = ("open", "high", "low", "close", "volume")
FEATURE_INDEX: Final[dict[str, int]] = {name: j for j, name in enumerate(FEATURE_COLUMNS)}


def validate_bar_arrays(bars: FloatArray) -> None:
    """Raise unless ``bars`` is (5, n_coins, n_bars) with n_bars >= 1, finite prices > 0 and
    finite volume >= 0 (the checks ``compute_features`` makes)."""
    if bars.ndim != 3 or bars.shape[0] != len(BAR_FIELDS) or bars.shape[2] < 1:
        raise ValueError(
            f"bars must be (5, n_coins, n_bars >= 1) arrays of {BAR_FIELDS}; got {bars.shape}"
        )
    prices, volume = bars[:4], bars[4]
    if not np.all(np.isfinite(prices) & (prices > 0.0)):
        bad = np.argwhere(~(np.isfinite(prices) & (prices > 0.0)))[0]
        raise DataValidationError(
            f"prices must be finite and > 0; {BAR_FIELDS[bad[0]]} of coin row {bad[1]} at bar "
            f"{bad[2]} is {prices[tuple(bad)]!r}"
        )
    if not np.all(np.isfinite(volume) & (volume >= 0.0)):
        bad = np.argwhere(~(np.isfinite(volume) & (volume >= 0.0)))[0]
        raise DataValidationError(
            f"volume must be finite and >= 0; coin row {bad[0]} at bar {bad[1]} is "
            f"{volume[tuple(bad)]!r}"
        )


def newest_bar_features(bars: FloatArray) -> FloatArray:
    """(n_coins, len(FEATURE_COLUMNS)) feature values at the newest of ``bars``' bars.

    ``bars`` is (5, n_coins, n_bars): open, high, low, close, volume, each row one coin's last
    ``n_bars`` bars oldest first (one length for all: group coins by window length). NaN
    where ``compute_features`` would give null (see the module docstring).
    """
    array = np.asarray(bars, dtype=np.float64)
    validate_bar_arrays(array)
    newest = NewestWindows(*(np.ascontiguousarray(array[k]) for k in range(len(BAR_FIELDS))))
    position = array.shape[2] - 1
    out = np.full((array.shape[1], len(FEATURE_COLUMNS)), np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for j, feature in enumerate(FEATURES):
            if position >= feature.warmup_bars:
                out[:, j] = feature.newest(newest)
    return out
