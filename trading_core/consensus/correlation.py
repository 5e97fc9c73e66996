"""Correlation penalty: engines that say the same thing share one weight.

Per regime, the engines enabled in that regime are clustered by single linkage at
``|corr| > threshold`` (the connected components of the graph whose edges are the pairs above
the threshold; Gower and Ross 1969 show single-linkage clusters are exactly these components)
over a window of past signals (the training window, or a trailing one). Every member's weight
is divided by its cluster's number of *distinct* engines, and by how many members are exact
copies of it, so a cluster of k different engines counts once in total and adding an exact
copy of an engine changes nothing (the copies split their original's share). Exact copies have
identical signal and confidence columns over the window and the same soft-gate multiplier (an
engine's reliability is a function of its signals, so it is identical too).
"""

import numpy as np
import numpy.typing as npt

from trading_core.consensus.reliability import N_REGIMES

FloatArray = npt.NDArray[np.float64]


def _abs_correlation(window: FloatArray) -> FloatArray:
    """|Pearson correlation| of the columns; 0 where a column is constant (undefined)."""
    centred = window - window.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (centred.T @ centred) / np.outer(norms, norms)
    corr[~np.isfinite(corr)] = 0.0
    result: FloatArray = np.abs(corr)
    return result


def _divisors_of(window: FloatArray, identity: FloatArray, threshold: float) -> FloatArray:
    n = window.shape[1]
    first_seen: dict[bytes, int] = {}
    column_id = np.array(
        [first_seen.setdefault((column + 0.0).tobytes(), len(first_seen)) for column in identity.T]
    )
    identical = column_id[:, None] == column_id[None, :]
    # imported here: scipy.sparse (~0.1 s) is only needed once divisors are computed, and
    # every importer of trading_core.consensus (the Dagster code location) would pay it
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import connected_components

    adjacency = (_abs_correlation(window) > threshold) | identical
    _, cluster = connected_components(csr_array(adjacency), directed=False)
    multiplicity = np.bincount(column_id)[column_id]
    distinct = np.zeros(n)
    for label in np.unique(cluster):
        members = cluster == label
        distinct[members] = np.unique(column_id[members]).size
    result: FloatArray = distinct * multiplicity
    return result


def _validated(
    signal_window: npt.ArrayLike,
    enabled: npt.ArrayLike,
    confidence_window: npt.ArrayLike | None,
    weight_multipliers: npt.ArrayLike | None,
) -> tuple[FloatArray, npt.NDArray[np.bool_], FloatArray, FloatArray]:
    window = np.asarray(signal_window, dtype=np.float64)
    gates = np.asarray(enabled, dtype=bool)
    if window.ndim != 2 or gates.shape != (N_REGIMES, window.shape[1]):
        raise ValueError(
            f"signal_window must be (n_bars, n_engines) and enabled ({N_REGIMES}, n_engines); "
            f"got {window.shape} and {gates.shape}"
        )
    if window.shape[0] < 2 or not np.all(np.isfinite(window)):
        raise ValueError(f"signal_window needs >= 2 finite rows; got {window.shape[0]} rows")
    confidence = (
        np.zeros_like(window)
        if confidence_window is None
        else np.asarray(confidence_window, dtype=np.float64)
    )
    multipliers = np.asarray(
        np.ones(gates.shape) if weight_multipliers is None else weight_multipliers,
        dtype=np.float64,
    )
    if confidence.shape != window.shape or multipliers.shape != gates.shape:
        raise ValueError(
            f"confidence_window must be {window.shape} and weight_multipliers {gates.shape}; "
            f"got {confidence.shape} and {multipliers.shape}"
        )
    return window, gates, confidence, multipliers


def cluster_divisors(
    signal_window: npt.ArrayLike,
    enabled: npt.ArrayLike,
    threshold: float,
    *,
    confidence_window: npt.ArrayLike | None = None,
    weight_multipliers: npt.ArrayLike | None = None,
) -> FloatArray:
    """Weight divisors (n_regimes, n_engines), >= 1; 1 for engines disabled in a regime.

    ``signal_window`` is (n_window_bars, n_engines) of finite signals; ``enabled`` the hard
    gates (n_regimes, n_engines); ``threshold`` is ``correlation_penalty_threshold``. The
    confidences of the same bars and the soft gates (n_regimes, n_engines) only serve to tell
    exact copies apart (without them, identical signal columns count as copies).
    """
    window, gates, confidence, multipliers = _validated(
        signal_window, enabled, confidence_window, weight_multipliers
    )
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"correlation threshold {threshold!r} must be in [0, 1]")
    divisors = np.ones(gates.shape)
    for regime in range(N_REGIMES):
        columns = np.flatnonzero(gates[regime])
        if columns.size:
            identity = np.vstack(
                [window[:, columns], confidence[:, columns], multipliers[regime, columns]]
            )
            divisors[regime, columns] = _divisors_of(window[:, columns], identity, threshold)
    return divisors
