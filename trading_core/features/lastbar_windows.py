"""The intermediates of :mod:`trading_core.features.lastbar`: trailing windows of many coins'
bars and the adjusted exponential averages, evaluated at the newest bar.

:class:`NewestWindows` holds one ``(n_coins, n_bars)`` array per OHLCV field and computes each
intermediate (log closes, true range, ATR, EMAs, rolling means, extremes) once, on first use.
The adjusted EWM of polars (``adjust=True``) at the last bar of a window that starts at its
first bar is a dot product with normalised weights ``(1 - alpha)^k``; the MACD signal line, an
EMA of a difference of EMAs, is linear in the closes: one dot product with
:func:`macd_signal_weights`. Wilder (1978) for ATR and RSI; Appel for MACD.
"""

import functools
from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt

from trading_core.features.expressions import ATR_BARS

FloatArray = npt.NDArray[np.float64]
SQUEEZE_BARS: Final = 6  # the squeeze looks back over the ratio of the last 6 bars
LOG_BARS: Final = 77  # the longest reach of a log-close feature: 72 + 4 (variance ratio) + 1


def span_alpha(span: int) -> float:
    return 2.0 / (span + 1.0)


@functools.cache
def ewm_weights(alpha: float, length: int) -> FloatArray:
    """Normalised weights of an adjusted EWM over ``length`` values, oldest first."""
    powers = (1.0 - alpha) ** np.arange(length - 1, -1, -1, dtype=np.float64)
    weights: FloatArray = powers / powers.sum()
    weights.flags.writeable = False
    return weights


def _ewm_matrix(alpha: float, length: int) -> FloatArray:
    """Row ``p``: the weights giving the adjusted EWM at position ``p`` (zeros after ``p``)."""
    lag = np.arange(length)[:, None] - np.arange(length)[None, :]
    powers = np.where(lag >= 0, (1.0 - alpha) ** np.maximum(lag, 0), 0.0)
    matrix: FloatArray = powers / powers.sum(axis=1, keepdims=True)
    return matrix


@functools.cache
def macd_signal_weights(length: int) -> FloatArray:
    """Weights ``k`` with ``signal = close @ k``: the span-9 EMA of EMA12 - EMA26 at the last of
    ``length`` closes (every EMA adjusted and started at the first bar, as polars runs them)."""
    macd = _ewm_matrix(span_alpha(12), length) - _ewm_matrix(span_alpha(26), length)
    weights: FloatArray = ewm_weights(span_alpha(9), length) @ macd
    weights.flags.writeable = False
    return weights


def std_about_last(x: FloatArray, ddof: int) -> FloatArray:
    """Row standard deviations, exactly 0 on a flat window (as polars' rolling std gives it):
    taken about the last value, which changes nothing but the rounding."""
    std: FloatArray = (x - x[:, -1:]).std(axis=1, ddof=ddof)
    return std


def safe_div(num: FloatArray, den: FloatArray, default: float = 0.0) -> FloatArray:
    """``core._safe_div``: num / den where den > 0 (polars orders NaN above 0), else default."""
    result: FloatArray = np.where((den > 0.0) | np.isnan(den), num / den, default)
    return result


def trailing_windows(x: FloatArray, width: int, count: int) -> FloatArray:
    """The trailing ``width``-bar windows ending at each of the last ``count`` columns,
    (n, count, width) and C-contiguous (so each reduction runs along a contiguous row)."""
    tail = x[:, x.shape[1] - width - count + 1 :]
    view = np.lib.stride_tricks.sliding_window_view(tail, width, axis=1)
    return np.ascontiguousarray(view)


class NewestWindows:
    """Intermediates of the newest bar, each computed once on first use."""

    def __init__(
        self,
        open_: FloatArray,
        high: FloatArray,
        low: FloatArray,
        close: FloatArray,
        volume: FloatArray,
    ) -> None:
        self.o, self.h, self.l, self.c, self.v = open_, high, low, close, volume
        self.m = close.shape[1]
        self._cache: dict[str, FloatArray] = {}

    def cached(self, key: str, build: Callable[[], FloatArray]) -> FloatArray:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    # --- series over the window ----------------------------------------------------------

    @property
    def log_close(self) -> FloatArray:
        """log close of the last ``LOG_BARS`` bars (what the log features reach back to)."""
        return self.cached("lc", lambda: np.log(self.c[:, -LOG_BARS:]))

    @property
    def lr1(self) -> FloatArray:
        """log return of bars 1..t (polars: null at bar 0)."""
        return self.cached("lr1", lambda: np.diff(self.log_close, axis=1))

    @property
    def diff(self) -> FloatArray:
        return self.cached("diff", lambda: np.diff(self.c, axis=1))

    @property
    def true_range(self) -> FloatArray:
        def build() -> FloatArray:
            rng = self.h - self.l
            prev = self.c[:, :-1]
            out = rng.copy()
            out[:, 1:] = np.maximum(
                np.maximum(rng[:, 1:], np.abs(self.h[:, 1:] - prev)), np.abs(self.l[:, 1:] - prev)
            )
            return out

        return self.cached("tr", build)

    def ewm_last(self, x: FloatArray, alpha: float) -> FloatArray:
        """Adjusted EWM at the last column of ``x`` (started at its first column)."""
        last: FloatArray = (x * ewm_weights(alpha, x.shape[1])).sum(axis=1)
        return last

    def atr_at(self, back: int) -> FloatArray:
        """Wilder ATR ``back`` (< ``SQUEEZE_BARS``) bars before the newest."""
        if back == 0:
            return self.cached("atr", lambda: self.ewm_last(self.true_range, 1.0 / ATR_BARS))
        return self.cached("atr_tail", self._atr_tail)[:, SQUEEZE_BARS - 1 - back]

    def _atr_tail(self) -> FloatArray:
        """ATR of the ``SQUEEZE_BARS - 1`` bars before the newest, oldest first: one dot
        product at the first, then Wilder's recursion (weighted sum and weight total)."""
        beta = 1.0 - 1.0 / ATR_BARS
        first = self.m - SQUEEZE_BARS
        powers = beta ** np.arange(first, -1, -1, dtype=np.float64)
        weighted = (self.true_range[:, : first + 1] * powers).sum(axis=1)
        total = float(powers.sum())
        out = np.empty((self.c.shape[0], SQUEEZE_BARS - 1))
        for j in range(SQUEEZE_BARS - 1):
            out[:, j] = weighted / total
            weighted = beta * weighted + self.true_range[:, first + 1 + j]
            total = beta * total + 1.0
        return out

    @property
    def atr(self) -> FloatArray:
        return self.atr_at(0)

    def ema(self, span: int) -> FloatArray:
        return self.cached(f"ema{span}", lambda: self.ewm_last(self.c, span_alpha(span)))

    def mean_sq_return(self, w: int) -> FloatArray:
        return self.cached(f"ms{w}", lambda: np.square(self.lr1[:, -w:]).mean(axis=1))

    def realized_vol(self, w: int) -> FloatArray:
        return np.sqrt(self.mean_sq_return(w))

    def log_ret(self, k: int) -> FloatArray:
        return self.log_close[:, -1] - self.log_close[:, -1 - k]

    def sma(self, w: int) -> FloatArray:
        return self.cached(f"sma{w}", lambda: self.c[:, -w:].mean(axis=1))

    def std(self, w: int) -> FloatArray:
        return self.cached(f"std{w}", lambda: std_about_last(self.c[:, -w:], ddof=1))

    def volume_sum(self, w: int) -> FloatArray:
        return self.cached(f"vol{w}", lambda: self.v[:, -w:].sum(axis=1))

    def prior_extreme(self, w: int) -> tuple[FloatArray, FloatArray]:
        """Highest high and lowest low of the ``w`` bars before the newest."""
        return self.h[:, -w - 1 : -1].max(axis=1), self.l[:, -w - 1 : -1].min(axis=1)

    def close_location(self, width: int) -> FloatArray:
        h, lo, c = self.h[:, -width:], self.l[:, -width:], self.c[:, -width:]
        return safe_div((c - lo) - (h - c), h - lo)

    @property
    def dollar_volume(self) -> FloatArray:
        return self.cached("dv", lambda: self.c * self.v)

    def stoch_k_at(self, count: int) -> FloatArray:
        """%K of the last ``count`` bars, (n, count)."""
        hh = trailing_windows(self.h, 14, count).max(axis=2)
        ll = trailing_windows(self.l, 14, count).min(axis=2)
        c = self.c[:, -count:]
        return safe_div(c - ll, hh - ll, 0.5) * 100.0
