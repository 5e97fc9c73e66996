"""Types shared by the 23 engines: context, one engine's output, its spec, the 23-engine matrix."""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.types import Regime

FloatArray = npt.NDArray[np.float64]
Features = Mapping[str, FloatArray]
MlPredictor = Callable[[pl.DataFrame], npt.NDArray[np.floating]]


def _check_optional_series(name: str, values: FloatArray | None) -> None:
    if values is not None and (not isinstance(values, np.ndarray) or values.ndim != 1):
        raise ValueError(f"EngineContext.{name} must be a 1-D numpy array or None, got {values!r}")


@dataclass(frozen=True, slots=True, eq=False)
class EngineContext:
    """What engines need besides the coin's own bars, each aligned one value per bar.

    ``btc_close``: BTC/USDT close at the same bar (NaN before BTC history); ``funding_rate``:
    latest known perp funding, fraction per 8h (NaN where unknown); ``ml_predictor``: the Brain
    Library model, mapping the ML input frame (features + ``sig_<rule engine>`` columns) to a
    predicted forward return in bps per bar; ``ml_scale_bps``: prediction mapped to signal as
    ``tanh(pred / ml_scale_bps)``. Build aligned arrays with ``align_series``.
    """

    btc_close: FloatArray | None = None
    funding_rate: FloatArray | None = None
    ml_predictor: MlPredictor | None = None
    ml_scale_bps: float = 50.0

    def __post_init__(self) -> None:
        _check_optional_series("btc_close", self.btc_close)
        _check_optional_series("funding_rate", self.funding_rate)
        if not (math.isfinite(self.ml_scale_bps) and self.ml_scale_bps > 0.0):
            raise ValueError(f"ml_scale_bps {self.ml_scale_bps!r} must be a finite number > 0")
        if self.ml_predictor is not None and not callable(self.ml_predictor):
            raise ValueError(f"ml_predictor {self.ml_predictor!r} must be callable or None")


@dataclass(frozen=True, slots=True, eq=False)
class EngineSignal:
    """One engine over n bars: ``signal`` in [-1, 1] and ``confidence`` in [0, 1], no NaN."""

    signal: FloatArray
    confidence: FloatArray

    def __post_init__(self) -> None:
        s, c = self.signal, self.confidence
        if s.shape != c.shape or s.ndim != 1:
            raise ValueError(f"signal {s.shape} and confidence {c.shape} must be 1-D, same length")
        if s.dtype != np.float64 or c.dtype != np.float64:
            raise ValueError(f"signal/confidence must be float64, got {s.dtype}/{c.dtype}")
        if s.size and not (np.all(np.abs(s) <= 1.0) and np.all((c >= 0.0) & (c <= 1.0))):
            bad = int(np.argmax(~((np.abs(s) <= 1.0) & (c >= 0.0) & (c <= 1.0))))
            raise ValueError(
                f"bar {bad}: signal {s[bad]!r} must be in [-1, 1] and confidence {c[bad]!r} in "
                "[0, 1] (NaN is not allowed)"
            )


RawEngineFn = Callable[[Features, EngineContext, int], tuple[FloatArray, FloatArray]]
EngineFn = Callable[[pl.DataFrame, EngineContext], EngineSignal]


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """A named engine: ``fn(bars_with_features, ctx)`` returns zero signal and confidence on the
    first ``warmup_bars`` bars and wherever its inputs are unknown (abstention). ``inputs``
    names the feature columns it reads; ``raw_fn`` (rule engines) is the numpy core that
    ``run_rule_engines`` and long multi-coin arrays use without a frame per engine."""

    name: str
    family: str
    description: str
    regimes: tuple[Regime, ...]
    fn: EngineFn = field(repr=False)
    warmup_bars: int
    inputs: tuple[str, ...] = ()
    raw_fn: RawEngineFn | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"engine name {self.name!r} must be a lower_snake identifier")
        if not self.regimes or any(not isinstance(r, Regime) for r in self.regimes):
            raise ValueError(
                f"engine {self.name!r}: regimes {self.regimes!r} must be Regime values"
            )
        if Regime.ILLIQUID in self.regimes:
            raise ValueError(f"engine {self.name!r}: no engine is meant for ILLIQUID")
        if "\n" in self.description or not self.description:
            raise ValueError(f"engine {self.name!r}: description must be one non-empty line")
        if self.warmup_bars < 0:
            raise ValueError(f"engine {self.name!r}: warmup_bars {self.warmup_bars} must be >= 0")


@dataclass(frozen=True, slots=True, eq=False)
class EngineMatrix:
    """All engines over n bars: ``signals`` and ``confidences`` of shape (n_bars, n_engines)."""

    names: tuple[str, ...]
    signals: FloatArray
    confidences: FloatArray

    def __post_init__(self) -> None:
        shape = self.signals.shape
        if len(shape) != 2 or shape[1] != len(self.names) or self.confidences.shape != shape:
            raise ValueError(
                f"signals {shape} and confidences {self.confidences.shape} must both be "
                f"(n_bars, {len(self.names)})"
            )

    def column(self, name: str) -> EngineSignal:
        """One engine's signal and confidence; KeyError naming the engines if unknown."""
        if name not in self.names:
            raise KeyError(f"engine {name!r} not in {list(self.names)}")
        j = self.names.index(name)
        return EngineSignal(
            np.ascontiguousarray(self.signals[:, j]), np.ascontiguousarray(self.confidences[:, j])
        )


def guard(
    signal: FloatArray, confidence: FloatArray, silent: npt.NDArray[np.bool_]
) -> tuple[FloatArray, FloatArray]:
    """Zero where ``silent`` (warm-up) or unknown (NaN: missing BTC/funding history, a zero
    volatility); clip the rest to range."""
    n = silent.shape[0]
    sig, conf = np.empty(n), np.empty(n)
    # silent rows as "bar position 0 of a 1-bar warm-up"
    guard_into(signal, confidence, (~silent).astype(np.int64), 1, sig, conf)
    return sig, conf


def guard_into(
    signal: FloatArray,
    confidence: FloatArray,
    bar_index: npt.NDArray[np.integer],
    warmup_bars: int,
    signal_out: FloatArray,
    confidence_out: FloatArray,
) -> None:
    """:func:`guard` with rows silent where ``bar_index < warmup_bars``, written into
    ``signal_out`` / ``confidence_out`` (e.g. a column of the engine matrix: no temporaries)."""
    n = bar_index.shape[0]
    _guard_kernel(
        _float_series(signal, n),
        _float_series(confidence, n),
        bar_index,
        warmup_bars,
        signal_out,
        confidence_out,
    )


def _float_series(values: FloatArray, n: int) -> FloatArray:
    if isinstance(values, np.ndarray) and values.dtype == np.float64 and values.shape == (n,):
        return values
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (n,))


@numba.njit(cache=True, error_model="numpy")
def _guard_kernel(
    signal: FloatArray,
    confidence: FloatArray,
    bar_index: npt.NDArray[np.integer],
    warmup_bars: int,
    signal_out: FloatArray,
    confidence_out: FloatArray,
) -> None:
    # one pass instead of ten numpy temporaries per engine
    for t in range(bar_index.shape[0]):
        s, c = signal[t], confidence[t]
        if bar_index[t] < warmup_bars or not (math.isfinite(s) and math.isfinite(c)):
            signal_out[t], confidence_out[t] = 0.0, 0.0
        else:
            signal_out[t] = min(max(s, -1.0), 1.0)
            confidence_out[t] = min(max(c, 0.0), 1.0)


def run_raw(
    raw: RawEngineFn, features: Features, ctx: EngineContext, n_bars: int
) -> tuple[FloatArray, FloatArray]:
    """Call a raw engine; a division by zero (flat market) yields inf/NaN = "no information"."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return raw(features, ctx, n_bars)


def feature_arrays(bars: pl.DataFrame, names: Sequence[str]) -> dict[str, FloatArray]:
    """Columns ``names`` as float64 numpy (nulls become NaN); KeyError naming a missing one."""
    missing = [n for n in names if n not in bars.columns]
    if missing:
        raise KeyError(
            f"columns {missing} missing: engines need compute_features(bars) output, got "
            f"{bars.columns[:8]}..."
        )
    # One 2-D conversion (nulls become NaN) is several times faster than one per column; the
    # Fortran-ordered result makes every column a contiguous view.
    matrix = bars.select(pl.col(list(names)).cast(pl.Float64)).to_numpy()
    return {n: matrix[:, j] for j, n in enumerate(names)}


def guarded(raw: RawEngineFn, warmup_bars: int, inputs: Sequence[str]) -> EngineFn:
    """The public engine function of a raw one: frame in, zero in warm-up, clipped."""

    def fn(bars: pl.DataFrame, ctx: EngineContext) -> EngineSignal:
        n = bars.height
        signal, confidence = run_raw(raw, feature_arrays(bars, inputs), ctx, n)
        return EngineSignal(*guard(signal, confidence, np.arange(n) < warmup_bars))

    fn.__name__ = getattr(raw, "__name__", "engine")
    fn.__doc__ = raw.__doc__
    return fn


def ramp(x: FloatArray, lo: float, hi: float) -> FloatArray:
    """0 below ``lo``, 1 above ``hi``, linear between (NaN stays NaN)."""
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)
