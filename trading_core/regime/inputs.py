"""The regime detector's raw inputs, declared once: what each is, its kernel row, its warm-up.

The detector (:mod:`trading_core.regime.detector`) reads four per-bar inputs, each a trailing
window ending at the bar; :data:`RAW_INPUTS` declares them. Both paths read this list:

* the batch path: the numba kernel :func:`trading_core.regime.kernels.bar_inputs` writes each
  input into its ``row`` of one matrix; the detector takes the rolling percentile of those with
  a ``percentile`` and derives its warm-up (:func:`raw_warmup_bars`) from the declarations;
* the incremental path (:mod:`trading_core.regime.incremental`): each input's ``newest``
  function evaluates it at the last bar of many coins' tails (numpy), and the tail it needs
  (:func:`tail_bars`) comes from the same warm-ups.

``tests/unit/trading_core/regime/test_regime_inputs.py`` checks, input by input, that the kernel row
equals the newest-bar function on every bar and that each input is defined from exactly its warm-up.
Adding an input: declare it here, write its row in ``kernels.bar_inputs`` (and a new ``I_*``
row number there) and read it in the label rules (``kernels.raw_labels`` and
``incremental._raw_codes``).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from trading_core.config.models import RegimeDetectionSection
from trading_core.regime import kernels

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RegimeWindows:
    """The window lengths (bars) the inputs are computed over."""

    vol: int
    dollar_volume: int
    lookback: int
    percentile: int

    @classmethod
    def of(
        cls,
        detection: RegimeDetectionSection,
        *,
        vol_window_bars: int | None = None,
        dollar_volume_window_bars: int | None = None,
    ) -> "RegimeWindows":
        """``detection``'s windows, the volatility and dollar-volume ones overridable."""
        return cls(
            vol=detection.vol_window_bars if vol_window_bars is None else vol_window_bars,
            dollar_volume=(
                detection.dollar_volume_window_bars
                if dollar_volume_window_bars is None
                else dollar_volume_window_bars
            ),
            lookback=detection.lookback_bars,
            percentile=detection.percentile_window_bars,
        )


@dataclass(frozen=True)
class Tails:
    """Many coins' newest bars (last axis, oldest first; NaN-padded) and their log closes."""

    close: FloatArray
    volume: FloatArray
    log_close: FloatArray
    lr1: FloatArray

    @classmethod
    def of(cls, close: FloatArray, volume: FloatArray) -> "Tails":
        log_close = np.log(close)
        return cls(close, volume, log_close, np.diff(log_close, axis=-1))


@dataclass(frozen=True)
class RawInput:
    """One input: defined from bar ``warmup(windows)`` of a series on (NaN-free bars).

    ``row``: its row in the kernel's input matrix; ``newest``: its value at the last bar of each
    tail; ``percentile``: the quantile the rules compare it with (a rolling quantile over
    ``windows.percentile`` bars of itself), if any; ``reads_previous``: the rules also read its
    value at the previous bar (volatility, for the jump test).
    """

    name: str
    row: int
    warmup: Callable[[RegimeWindows], int]
    newest: Callable[[Tails, RegimeWindows], FloatArray]
    percentile: Callable[[RegimeDetectionSection], float] | None = None
    reads_previous: bool = False

    def rules_warmup(self, windows: RegimeWindows) -> int:
        """First bar at which the rules can read this input (its percentile, its previous)."""
        warm = self.warmup(windows)
        needs = [warm]
        if self.percentile is not None:
            needs.append(warm + windows.percentile - 1)
        if self.reads_previous:
            needs.append(warm + 1)
        return max(needs)


def _abs_return(x: Tails, w: RegimeWindows) -> FloatArray:
    """|log return| of the bar."""
    result: FloatArray = np.abs(x.lr1[..., -1])
    return result


def _vol(x: Tails, w: RegimeWindows) -> FloatArray:
    """Realised volatility: root mean square log return over ``w.vol`` bars."""
    result: FloatArray = np.sqrt(
        np.ascontiguousarray(np.square(x.lr1[..., -w.vol :])).mean(axis=-1)
    )
    return result


def _dollar_volume(x: Tails, w: RegimeWindows) -> FloatArray:
    """Mean dollar volume (close x volume) over ``w.dollar_volume`` bars."""
    dollar = x.close * x.volume
    result: FloatArray = np.ascontiguousarray(dollar[..., -w.dollar_volume :]).mean(axis=-1)
    return result


def _efficiency(x: Tails, w: RegimeWindows) -> FloatArray:
    """Kaufman efficiency ratio of log close over ``w.lookback`` bars (0 on a flat window)."""
    path = np.ascontiguousarray(np.abs(x.lr1[..., -w.lookback :])).sum(axis=-1)
    move = np.abs(x.log_close[..., -1] - x.log_close[..., -1 - w.lookback])
    efficiency = move / path
    result: FloatArray = np.where(np.isnan(efficiency), 0.0, efficiency)
    return result


RAW_INPUTS: Final[tuple[RawInput, ...]] = (
    RawInput("abs_return", kernels.I_ABS_RETURN, lambda w: 1, _abs_return),
    RawInput(
        "vol",
        kernels.I_VOL,
        lambda w: w.vol,
        _vol,
        percentile=lambda d: d.panic_vol_percentile,
        reads_previous=True,
    ),
    RawInput(
        "dollar_volume",
        kernels.I_DOLLAR_VOLUME,
        lambda w: w.dollar_volume - 1,
        _dollar_volume,
        percentile=lambda d: d.illiquid_volume_percentile,
    ),
    RawInput("efficiency", kernels.I_EFFICIENCY, lambda w: w.lookback, _efficiency),
)
RAW_INPUT_BY_NAME: Final[Mapping[str, RawInput]] = {i.name: i for i in RAW_INPUTS}
N_INPUTS: Final = len(RAW_INPUTS)
if sorted(i.row for i in RAW_INPUTS) != list(range(N_INPUTS)):  # pragma: no cover
    raise RuntimeError(f"raw input rows must be 0..{N_INPUTS - 1} once each")


def raw_warmup_bars(windows: RegimeWindows) -> int:
    """First bar index at which the rules can read every raw input."""
    return max(i.rules_warmup(windows) for i in RAW_INPUTS)


def tail_bars(windows: RegimeWindows) -> int:
    """Bars per coin the newest-bar functions need: the longest input's reach (``warmup + 1``
    bars), plus one (the previous bar's volatility for the jump test comes from the memory)."""
    return max(i.warmup(windows) + 1 for i in RAW_INPUTS) + 1


def newest_inputs(
    close: FloatArray, volume: FloatArray, windows: RegimeWindows
) -> dict[str, FloatArray]:
    """Every raw input at the last bar of each tail (last axis), by name (NaN where a tail lacks
    bars; the efficiency ratio is 0 there)."""
    tails = Tails.of(close, volume)
    return {i.name: i.newest(tails, windows) for i in RAW_INPUTS}
